// libshmq: a lock-free shared-memory message queue for processes on one host.
#pragma once

#include "shmq/consumer.hpp"
#include "shmq/journal.hpp"
#include "shmq/producer.hpp"
#include "shmq/queue.hpp"
#include "shmq/status.hpp"
#include "shmq/version.hpp"
