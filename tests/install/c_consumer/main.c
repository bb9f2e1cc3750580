/* Built against the installed shmq package from a C-only project, once with
 * the static library and once with the shared one: one message through a
 * queue with the C API, and a failure's status and message. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmq/shmq.h>

int main(void) {
  char ns[64];
  snprintf(ns, sizeof ns, "install-c%ld", (long)getpid());
  shmq_queue_t* queue = NULL;
  shmq_producer_t* producer = NULL;
  shmq_consumer_t* consumer = NULL;
  shmq_message_t m;
  int ok = shmq_queue_create("example", NULL, ns, &queue) == SHMQ_OK &&
           shmq_producer_attach(queue, "p", NULL, &producer) == SHMQ_OK &&
           shmq_consumer_join(queue, "g", NULL, &consumer) == SHMQ_OK &&
           shmq_producer_send(producer, "hello", 5, SHMQ_FOREVER, NULL) == SHMQ_OK &&
           shmq_consumer_receive(consumer, &m, 1000000000) == SHMQ_OK && m.size == 5 &&
           memcmp(m.payload, "hello", 5) == 0 && shmq_consumer_ack(consumer, &m) == SHMQ_OK;
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  bool existed = false;
  ok = ok && shmq_queue_remove("example", ns, &existed) == SHMQ_OK && existed;
  const int not_found = shmq_queue_open("example", ns, &queue) == SHMQ_NOT_FOUND &&
                        strstr(shmq_last_error(), "example") != NULL;
  printf("shmq %s from C: %s\n", shmq_version(), ok && not_found ? "installed package works" : "FAILED");
  return ok && not_found ? 0 : 1;
}
