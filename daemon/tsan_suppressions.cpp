// ThreadSanitizer builds only: moodycamel::ConcurrentQueue (the journal's
// hand-off between the drain and writer threads) orders its slots with
// std::atomic_thread_fence, which ThreadSanitizer does not model, so its
// reports inside the queue are false (the same as bench/tsan.supp). Built
// into shmqd, so every test that runs it needs no TSAN_OPTIONS.
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_suppressions() { return "race:moodycamel::ConcurrentQueue\n"; }
#endif
