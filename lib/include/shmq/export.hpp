// What libshmq exports. The shared library is built with hidden visibility
// (-fvisibility=hidden -fvisibility-inlines-hidden, lib/CMakeLists.txt), so
// its dynamic symbol table holds only what is marked SHMQ_API here: the public
// API. The internals (shmq::detail, shmq::layout, shmq::journal, ...) stay
// inside it, where no program can bind to them or interpose them, and where
// the compiler may call them directly. The static library, built from the
// same objects, links as before: visibility only concerns shared objects.
//
// Marked: every class with code of its own (Queue, Producer, Consumer, Error)
// and every free function. Plain data (QueueOptions, QueueInfo, Message, ...)
// has no code to export; marking it would only export the std::vector and
// std::string code libshmq instantiates for it.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
// A class, or a function, of the public API.
#define SHMQ_API __attribute__((visibility("default")))
// A type the public headers name but only libshmq defines (Producer::State):
// hidden even though its enclosing class is exported.
#define SHMQ_LOCAL __attribute__((visibility("hidden")))
#else
#define SHMQ_API
#define SHMQ_LOCAL
#endif
