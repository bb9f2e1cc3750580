# Installs the build into a scratch prefix, then configures, builds and runs
# two tiny projects that use it through find_package(shmq): one in C++ (the
# C++ API), one in C alone (the C API, shmq.h); and, where the build has the
# Python package (PYTHON: its interpreter, PYTHON_DIR: its folder under the
# prefix), imports it from the prefix and passes a message through it.
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

if(PYTHON)
  set(site ${WORK_DIR}/prefix/${PYTHON_DIR})
  string(RANDOM LENGTH 8 ALPHABET abcdefghijklmnopqrstuvwxyz ns)
  set(script [=[
import sys, shmq
assert shmq.__file__.startswith(sys.argv[1]), f"imported {shmq.__file__}, not the installed package"
try:
    with shmq.Queue.create("installed", capacity=4096, max_message=64) as q:
        q.producer("p").send(b"hello")
        c = q.consumer("g")
        m = c.receive(timeout=1.0)
        assert bytes(m.payload) == b"hello" and m.producer == "p", m
        c.ack(m)
finally:
    shmq.Queue.remove("installed")
print("the installed Python package works:", shmq.__file__)
]=])
  execute_process(COMMAND ${CMAKE_COMMAND} -E env PYTHONPATH=${site} SHMQ_NAMESPACE=install-${ns}
                          ${PYTHON} -c "${script}" ${site}
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "importing the installed Python package from ${site} failed (${rc})")
  endif()
endif()
