add_library(sandbox_warnings INTERFACE)
target_compile_options(sandbox_warnings INTERFACE -Wall -Wextra -Wno-missing-field-initializers)

if(SANDBOX_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
