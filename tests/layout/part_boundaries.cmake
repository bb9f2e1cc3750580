# The parts depend only downward (issue 14): lib <- daemon, lib <- tools,
# daemon and tools never on each other, and tools on libshmq's public API only.
# Fails, naming every offending include, when
#   - a file of lib/ includes a header of daemon/ or tools/;
#   - a file of tools/ includes a lib-internal header (lib/src/...);
#   - a file of daemon/ includes a header of tools/, or one of tools/ a header of daemon/.
# An include is judged by the file it names: relative to the including file's
# folder first (as the compiler does for "..."), then to each include root of
# the part it could reach through its targets. Headers of the system and of
# third parties name no file of ours and pass.
#
#   cmake -DSOURCE_DIR=<repository root> -P tests/layout/part_boundaries.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "part_boundaries.cmake: pass -DSOURCE_DIR=<repository root>")
endif()

# Include roots, by what lives there. lib's public roots are the ones every part may use.
set(lib_public_roots ${SOURCE_DIR}/lib/include ${SOURCE_DIR}/lib/stats/include)
set(lib_internal_roots ${SOURCE_DIR}/lib/src)
set(daemon_roots ${SOURCE_DIR}/daemon)
set(tools_roots ${SOURCE_DIR}/tools)

# Sets `out` to the part a file of ours belongs to (lib-public, lib-internal,
# daemon, tools), or to "" for anything else.
function(part_of path out)
  file(REAL_PATH "${path}" path)
  foreach(part lib_public lib_internal daemon tools)
    foreach(root IN LISTS ${part}_roots)
      file(REAL_PATH "${root}" root)
      cmake_path(IS_PREFIX root "${path}" NORMALIZE inside)
      if(inside)
        string(REPLACE "_" "-" name ${part})
        set(${out} ${name} PARENT_SCOPE)
        return()
      endif()
    endforeach()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

# Sets `out` to the file `header` names when included from `file`, searched
# in the including file's folder and then in `roots`; "" when none exists.
function(resolve file header roots out)
  cmake_path(GET file PARENT_PATH folder)
  foreach(root ${folder} ${roots})
    if(EXISTS "${root}/${header}" AND NOT IS_DIRECTORY "${root}/${header}")
      set(${out} "${root}/${header}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

# Every part is searched with every root, so that a wrong include is caught
# even where its target's include path would not find it (it is still wrong).
set(all_roots ${lib_public_roots} ${lib_internal_roots} ${daemon_roots} ${tools_roots})
# What each part may not include.
set(forbidden_from_lib daemon tools)
set(forbidden_from_tools lib-internal daemon)
set(forbidden_from_daemon tools)

set(offences "")
foreach(part lib tools daemon)
  file(GLOB_RECURSE sources LIST_DIRECTORIES false
       ${SOURCE_DIR}/${part}/*.hpp ${SOURCE_DIR}/${part}/*.cpp ${SOURCE_DIR}/${part}/*.h
       ${SOURCE_DIR}/${part}/*.cc ${SOURCE_DIR}/${part}/*.in)
  foreach(source IN LISTS sources)
    file(STRINGS "${source}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<][^\">]+[\">]")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[\"<]([^\">]+)[\">].*" "\\1" header "${line}")
      resolve("${source}" "${header}" "${all_roots}" target)
      if(NOT target)
        continue()  # the system's or a third party's
      endif()
      part_of("${target}" target_part)
      if(target_part IN_LIST forbidden_from_${part})
        file(RELATIVE_PATH where ${SOURCE_DIR} "${source}")
        file(RELATIVE_PATH what ${SOURCE_DIR} "${target}")
        list(APPEND offences "${where}: #include \"${header}\" (${what}, ${target_part})")
      endif()
    endforeach()
  endforeach()
endforeach()

if(offences)
  list(LENGTH offences count)
  list(JOIN offences "\n  " listed)
  message(FATAL_ERROR "${count} include(s) cross a part boundary "
                      "(lib includes no daemon/ or tools/ header; tools only libshmq's public headers; "
                      "daemon and tools never each other's):\n  ${listed}")
endif()
message(STATUS "part boundaries hold: lib <- daemon, lib <- tools, tools on the public API only")
