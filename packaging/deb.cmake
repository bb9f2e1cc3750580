# The Debian package (CPack's DEB generator): `scripts/package.sh` builds
# build/shmq_<version>_<arch>.deb from the normal build. One package with the
# programs, the library (static and shared), headers, CMake config, shmq.pc,
# the systemd unit, man pages and bash completion: the components listed in
# CPACK_COMPONENTS_ALL (not the examples, not the Python module).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME shmq)
set(CPACK_PACKAGE_VENDOR "shmq")
set(CPACK_PACKAGE_CONTACT "shmq maintainers <shmq@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "Lock-free multi-producer, multi-consumer-group message queues in shared memory, with optional journaled "
    "durability. The package holds the library (C++ and C APIs), the shmq and shmq-stat tools, and shmqd, the "
    "daemon that repairs after dead clients (systemd unit shmqd@<namespace>.service).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the programs' and the library's shared libraries (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# systemctl daemon-reload after an install or removal, where systemd runs;
# ldconfig for libshmq.so.0 (a trigger).
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/debian/postinst ${CMAKE_CURRENT_LIST_DIR}/debian/postrm
    ${CMAKE_CURRENT_LIST_DIR}/debian/triggers)
# The programs and library without their debug line tables (the build keeps them).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE SHMQ_DEB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT SHMQ_DEB_ARCH)
  set(SHMQ_DEB_ARCH amd64)
endif()
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${SHMQ_DEB_ARCH})
set(CPACK_DEBIAN_FILE_NAME "shmq_${PROJECT_VERSION}_${SHMQ_DEB_ARCH}.deb")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR})
# One package from several install components. More programs (shmq-bridge)
# join it by their install() rule: COMPONENT Unspecified (the default, as
# bridge/ does) or daemon, or add their component here; their man page comes
# from packaging/CMakeLists.txt (shmq_man_page), and tests/CMakeLists.txt
# tells the package test to expect them.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL Unspecified daemon)
set(CPACK_OUTPUT_CONFIG_FILE ${PROJECT_BINARY_DIR}/CPackConfig.cmake)
set(CPACK_SOURCE_OUTPUT_CONFIG_FILE ${PROJECT_BINARY_DIR}/CPackSourceConfig.cmake)
include(CPack)
