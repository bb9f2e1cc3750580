// recover() for a caller that holds the journal's directory lock already.
#pragma once

#include "journaling/writer.hpp"

namespace shmq::journal {

[[nodiscard]] Recovery recover_locked(const std::filesystem::path& dir, std::string_view queue,
                                      const Options& options);

}  // namespace shmq::journal
