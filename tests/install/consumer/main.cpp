// Built against the installed shmq package, once with the static library and
// once with the shared one: one message through a queue, and an shmq::Error
// thrown inside the library caught here (its type is exported).
#include <unistd.h>

#include <cstdio>
#include <string>

#include <shmq/shmq.hpp>

int main() {
  const std::string ns = "install" + std::to_string(::getpid());
  auto queue = shmq::Queue::create("example", {}, ns);
  auto producer = shmq::Producer::attach(queue, "p");
  auto consumer = shmq::Consumer::join(queue, "g");
  if (producer.try_send(shmq::as_bytes("hello")) != shmq::Status::Ok) return 1;
  shmq::Message m;
  const bool ok = consumer.try_receive(m) == shmq::Status::Ok && m.text() == "hello";
  shmq::Queue::remove("example", ns);
  bool caught = false;
  try {
    (void)shmq::Queue::open("example", ns);
  } catch (const shmq::Error& e) {
    caught = e.code() == shmq::Errc::NotFound;
  }
  std::printf("shmq %s: %s\n", SHMQ_VERSION_STRING, ok && caught ? "installed package works" : "FAILED");
  return ok && caught ? 0 : 1;
}
