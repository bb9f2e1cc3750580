#include "stat_watch.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"
#include "stat_report.hpp"

namespace shmq::tools {
namespace {

using Clock = std::chrono::steady_clock;

void write_all(std::string_view text) {
  while (!text.empty()) {
    const ssize_t written = ::write(STDOUT_FILENO, text.data(), text.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(written));
  }
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  return lines;
}

// The alternate screen with a hidden cursor and, when stdin is a terminal,
// keys read one at a time without echo; all undone on destruction.
class Screen {
 public:
  Screen() : keyboard_(::isatty(STDIN_FILENO) == 1) {
    if (keyboard_ && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    write_all("\x1b[?1049h\x1b[?25l");
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;
  ~Screen() {
    write_all("\x1b[?25h\x1b[?1049l");
    if (keyboard_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

  // Draws `report` from the top left with `footer` below it, each line cut to
  // the terminal's width. A report taller than the terminal ends in a line
  // "... +N more lines" where the rows run out, so that nothing is cut unsaid.
  void draw(const std::string& report, const std::string& footer) const {
    winsize size{};
    const bool sized = ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_row > 0;
    const std::size_t rows = sized ? size.ws_row : 1000;
    const std::size_t columns = sized ? size.ws_col : 1000;
    std::vector<std::string> lines = split_lines(report);
    const std::vector<std::string> footer_lines = split_lines(footer);
    const std::size_t room = rows > footer_lines.size() + 1 ? rows - footer_lines.size() : 1;
    if (lines.size() > room) {
      const std::size_t hidden = lines.size() - (room - 1);
      lines.resize(room - 1);
      lines.push_back(fmt::format("... +{} more lines (a taller terminal shows them; or name a QUEUE)", hidden));
    }
    lines.insert(lines.end(), footer_lines.begin(), footer_lines.end());
    std::string out = "\x1b[H";
    for (std::size_t row = 0; row < rows && row < lines.size(); ++row) {
      out += lines[row].substr(0, columns);
      out += row + 1 < rows ? "\x1b[K\r\n" : "\x1b[K";
    }
    out += "\x1b[J";
    write_all(out);
  }

  // Waits until `deadline`; true when the user asked to quit (q, Ctrl-C).
  [[nodiscard]] bool quit_before(Clock::time_point deadline) const {
    while (stop_signal() == 0) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd input{STDIN_FILENO, POLLIN, 0};
      const int ready = ::poll(&input, keyboard_ ? 1 : 0, static_cast<int>(left.count()));
      if (ready <= 0) continue;
      const bool input_gone = (input.revents & (POLLHUP | POLLERR)) != 0;
      if (input_gone || quit_key_pressed()) return true;
    }
    return true;
  }

 private:
  [[nodiscard]] static bool quit_key_pressed() {
    char keys[64];
    const ssize_t count = ::read(STDIN_FILENO, keys, sizeof keys);
    for (ssize_t i = 0; i < count; ++i) {
      if (keys[i] == 'q' || keys[i] == 'Q') return true;
    }
    return false;
  }

  bool keyboard_;
  termios saved_{};
};

}  // namespace

int watch(const std::string& ns, const std::string& queue, std::chrono::nanoseconds interval) {
  const StopSignals stop_signals;
  const Screen screen;
  const std::string footer = fmt::format("\nrefresh every {:g}s; q or Ctrl-C quits",
                                         std::chrono::duration<double>(interval).count());
  std::optional<Sample> previous;
  for (auto next = Clock::now();;) {
    Sample current = take_sample(ns, queue);
    screen.draw(render_table(current, previous ? &*previous : nullptr), footer);
    previous = std::move(current);
    next = std::max(next + interval, Clock::now());
    if (screen.quit_before(next)) return kExitOk;
  }
}

}  // namespace shmq::tools
