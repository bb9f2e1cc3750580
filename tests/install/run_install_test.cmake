# Installs the build into a scratch prefix, then configures, builds and runs a
# tiny project that uses it through find_package(shmq).
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
    "${WORK_DIR}/build/shmq_consumer_example_shared")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "step failed (${rc}): ${step}")
  endif()
endforeach()
