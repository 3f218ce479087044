# Third-party dependencies, all from the distribution (see scripts/bootstrap).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Boost 1.81 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(simdjson REQUIRED)
find_package(LibArchive 3.4 REQUIRED)  # sandboxd: /persist and /hydrate
find_package(PkgConfig REQUIRED)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)  # sandboxd: the sandboxes' filters

# Boost.Asio/Beast are header-only here; this target carries the settings every translation unit
# that includes them needs. Only a few TUs link it (keep Boost out of public headers).
add_library(sandbox_boost INTERFACE)
target_link_libraries(sandbox_boost INTERFACE Boost::headers Threads::Threads)
target_compile_definitions(sandbox_boost INTERFACE
  BOOST_ASIO_NO_DEPRECATED
  BOOST_ASIO_DISABLE_BOOST_COROUTINE)
# GCC 12 reports a false -Wmismatched-new-delete on every Asio coroutine frame.
target_compile_options(sandbox_boost INTERFACE $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)
