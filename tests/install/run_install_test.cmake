# Installs the build into a scratch prefix, then configures, builds and runs
# two tiny projects that use it through find_package(shmq): one in C++ (the
# C++ API), one in C alone (the C API, shmq.h); and, where the build has the
# Python package (PYTHON: its interpreter, PYTHON_DIR: its folder under the
# prefix), imports it from the prefix and passes a message through it. Then
# builds the same two programs with the compilers alone (CXX, CC), their
# flags from `pkg-config --cflags --libs shmq` (shmq.pc), and runs them.
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

# pkg-config: shmq.pc found through PKG_CONFIG_PATH, its prefix taken from its
# own folder (the tree was installed elsewhere than CMAKE_INSTALL_PREFIX).
find_program(PKG_CONFIG pkg-config)
if(NOT PKG_CONFIG)
  message(WARNING "pkg-config is not installed (Debian package pkg-config): shmq.pc was not tried")
  return()
endif()
file(GLOB_RECURSE pc_files ${WORK_DIR}/prefix/*/shmq.pc)
list(LENGTH pc_files found)
if(NOT found EQUAL 1)
  message(FATAL_ERROR "expected one installed shmq.pc, found: ${pc_files}")
endif()
get_filename_component(pc_dir ${pc_files} DIRECTORY)
get_filename_component(lib_dir ${pc_dir} DIRECTORY)
function(pkg_config out)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir} ${PKG_CONFIG} ${ARGN} shmq
                  OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "pkg-config ${ARGN} shmq failed (${rc}), PKG_CONFIG_PATH=${pc_dir}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(${out} ${flags} PARENT_SCOPE)
endfunction()
pkg_config(flags --cflags --libs)
message(STATUS "pkg-config --cflags --libs shmq: ${flags}")
string(FIND "${flags}" "-I${WORK_DIR}/prefix/" at)
if(at EQUAL -1)
  message(FATAL_ERROR "pkg-config's flags do not point into the installed tree ${WORK_DIR}/prefix: ${flags}")
endif()
foreach(step
    "${CXX};-std=c++20;${SOURCE_DIR}/tests/install/consumer/main.cpp;-o;${WORK_DIR}/pc_consumer;${flags}"
    "${CMAKE_COMMAND};-E;env;LD_LIBRARY_PATH=${lib_dir};${WORK_DIR}/pc_consumer"
    "${CC};${SOURCE_DIR}/tests/install/c_consumer/main.c;-o;${WORK_DIR}/pc_c_consumer;${flags}"
    "${CMAKE_COMMAND};-E;env;LD_LIBRARY_PATH=${lib_dir};${WORK_DIR}/pc_c_consumer")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "pkg-config step failed (${rc}): ${step}")
  endif()
endforeach()
