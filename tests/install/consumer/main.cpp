// Built against the installed shmq package: one message through a queue.
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
  std::puts(ok ? "installed package works" : "FAILED");
  return ok ? 0 : 1;
}
