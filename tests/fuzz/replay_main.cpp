// Replays a fuzz target's corpus without libFuzzer: every file named on the
// command line (a directory: every regular file in it, sorted) is fed once to
// LLVMFuzzerTestOneInput, each in its own forked child, so one crash does not
// hide the next. Exits 1 naming every input that crashed (or hung 60 s).
// SHMQ_REPLAY_NO_FORK=1 runs them in this process (for a debugger).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    if (fs::is_directory(arg)) {
      for (const auto& entry : fs::directory_iterator(arg)) {
        if (entry.is_regular_file()) inputs.push_back(entry.path());
      }
    } else {
      inputs.push_back(arg);
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...: no inputs found\n", argv[0]);
    return 2;
  }
  const bool no_fork = std::getenv("SHMQ_REPLAY_NO_FORK") != nullptr;
  std::vector<std::string> failed;
  for (const fs::path& input : inputs) {
    std::ifstream in(input, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "replay: cannot read %s\n", input.c_str());
      return 2;
    }
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", input.c_str(), bytes.size());
    std::fflush(stderr);
    const auto run = [&] {
      (void)LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    };
    if (no_fork) {
      run();
      continue;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("replay: fork");
      return 2;
    }
    if (pid == 0) {
      run();
      std::fflush(nullptr);
      ::_exit(0);
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        failed.push_back(input.string() + ": hung (killed after 60 s)");
        status = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // fuzz_segment's segment file and fuzz_journal's directory of that child,
    // left behind if it crashed.
    std::error_code ignored;
    fs::remove("/dev/shm/shmq.fz" + std::to_string(pid) + ".q", ignored);
    fs::remove_all("/dev/shm/shmq-fuzz-journal." + std::to_string(pid), ignored);
    if (WIFSIGNALED(status)) {
      failed.push_back(input.string() + ": killed by " + ::strsignal(WTERMSIG(status)));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      failed.push_back(input.string() + ": exit code " + std::to_string(WEXITSTATUS(status)));
    }
  }
  for (const std::string& f : failed) std::fprintf(stderr, "replay: FAILED %s\n", f.c_str());
  std::fprintf(stderr, "replay: %zu inputs, %zu failed\n", inputs.size(), failed.size());
  return failed.empty() ? 0 : 1;
}
