# SANDBOX_FUZZ=ON: libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer. Every
# translation unit gets libFuzzer's coverage instrumentation (fuzzer-no-link); only the fuzz
# executables link libFuzzer itself (tests/fuzz/CMakeLists.txt).
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR
    "SANDBOX_FUZZ=ON needs clang with libFuzzer, but the C++ compiler is "
    "${CMAKE_CXX_COMPILER_ID} (${CMAKE_CXX_COMPILER}). Configure a fresh build directory with "
    "CC=clang CXX=clang++ (scripts/fuzz does; Debian packages clang and libclang-rt-14-dev).")
endif()
if(SANDBOX_SANITIZE)
  message(FATAL_ERROR "SANDBOX_FUZZ=ON already builds with ASan and UBSan; leave SANDBOX_SANITIZE off")
endif()

# libFuzzer's runtime is a separate package on Debian (libclang-rt-<version>-dev).
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
check_cxx_source_compiles([[
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }
]] SANDBOX_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT SANDBOX_HAVE_LIBFUZZER)
  message(FATAL_ERROR
    "${CMAKE_CXX_COMPILER} cannot link a libFuzzer target (-fsanitize=fuzzer): install "
    "libFuzzer's runtime (Debian: libclang-rt-14-dev for clang 14; scripts/bootstrap does)")
endif()

add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)
