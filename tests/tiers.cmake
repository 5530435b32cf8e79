# The tiers test: compiled as each module is (its include path and definitions, from
# the build), an #include of every other module's public header compiles exactly when
# that module is one the first builds on (its smki_module DEPS, transitively), and
# fails with "No such file or directory" otherwise: above it (ca including ra) and
# beside it (ca including gbcs, hsm including policy). No module source escapes
# with a relative include ("../ra/ra.h").
# Run: cmake -DCTX=<build>/tiers/modules.cmake -DCC=<compiler> -DSRC=<source> -DWORK=<dir> -P tiers.cmake
cmake_minimum_required(VERSION 3.25)
include(${CTX}) # MODULES, SEES_<m>, INC_<m>, DEF_<m>

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(failures 0)
set(checked 0)

function(public_header module out)
  if(EXISTS ${SRC}/${module}/${module}.h)
    set(${out} ${module}/${module}.h PARENT_SCOPE)
  else()
    file(GLOB hs RELATIVE ${SRC} ${SRC}/${module}/*.h)
    list(GET hs 0 h)
    set(${out} ${h} PARENT_SCOPE)
  endif()
endfunction()

foreach(m IN LISTS MODULES)
  set(flags -std=c11 -fsyntax-only)
  foreach(d IN LISTS INC_${m})
    list(APPEND flags -I${d})
  endforeach()
  foreach(d IN LISTS DEF_${m})
    list(APPEND flags -D${d})
  endforeach()
  foreach(n IN LISTS MODULES)
    public_header(${n} header)
    set(probe ${WORK}/${m}_includes_${n}.c)
    file(WRITE ${probe} "/* compiled as ${m} */\n#include \"${header}\"\n")
    execute_process(COMMAND ${CC} ${flags} ${probe} RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE err)
    math(EXPR checked "${checked} + 1")
    if(n IN_LIST SEES_${m})
      if(NOT rc EQUAL 0)
        message(SEND_ERROR "${m} builds on ${n} but cannot include ${header}:\n${err}")
        math(EXPR failures "${failures} + 1")
      endif()
    elseif(rc EQUAL 0)
      message(SEND_ERROR "${m} does not build on ${n}, yet ${header} compiled in ${m}")
      math(EXPR failures "${failures} + 1")
    elseif(NOT err MATCHES "${header}: No such file or directory")
      message(SEND_ERROR "${m} including ${header} failed, but not for the missing header:\n${err}")
      math(EXPR failures "${failures} + 1")
    endif()
  endforeach()
endforeach()

# The fence is the include path; a relative path would step over it.
foreach(m IN LISTS MODULES)
  file(GLOB srcs ${SRC}/${m}/*.c ${SRC}/${m}/*.h)
  foreach(f IN LISTS srcs)
    file(STRINGS ${f} escapes REGEX "^[ \t]*#[ \t]*include[ \t]*\"\\.\\./")
    if(escapes)
      message(SEND_ERROR "${f}: a relative include steps out of ${m}/: ${escapes}")
      math(EXPR failures "${failures} + 1")
    endif()
  endforeach()
endforeach()

list(LENGTH MODULES count)
if(failures GREATER 0 OR count LESS 8)
  message(FATAL_ERROR "tiers: ${failures} failures in ${checked} includes of ${count} modules")
endif()
message(STATUS "tiers: ${checked} includes of ${count} modules, each as declared")
