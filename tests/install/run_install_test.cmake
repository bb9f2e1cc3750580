# Installs the build into a scratch prefix, then configures, builds and runs
# two tiny projects that use it through find_package(shmq): one in C++ (the
# C++ API), one in C alone (the C API, shmq.h).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/install/consumer;-B;${WORK_DIR}/build;-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/build"
    "${WORK_DIR}/build/shmq_consumer_example"
    "${WORK_DIR}/build/shmq_consumer_example_shared"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/install/c_consumer;-B;${WORK_DIR}/c_build;-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/c_build"
    "${WORK_DIR}/c_build/shmq_c_example"
    "${WORK_DIR}/c_build/shmq_c_example_shared")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "step failed (${rc}): ${step}")
  endif()
endforeach()
