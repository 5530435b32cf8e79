# The tiers, enforced by the compiler. Each module is a static library smki_NAME
# declared with one line:
#
#   smki_module(NAME TIER N DEPS MODULE...)
#
# TIER is NAME's place in the tiers (base 0; hsm, policy, store 1; ca, gbcs 2; ra,
# repo, duis, device 3; est, ops 4); DEPS are the modules NAME builds on (linked PUBLIC), each of a lower tier,
# or configuring fails. NAME sees, as root-relative
# includes ("hsm/hsm.h"), only itself and what its DEPS see: the build makes
# build/include/NAME/ holding a link to each of those module folders and nothing
# else, and that folder is NAME's include path (propagated to its dependants, who
# see all of it anyway). An #include of a module above, or beside, fails to compile
# ("No such file or directory"); tests/tiers.cmake proves it. There is no global
# include path: tools/ and tests/ see every module through smki_sees_all().
# Modules must be declared after their DEPS (add_subdirectory order).

function(smki_module name)
  cmake_parse_arguments(PARSE_ARGV 1 M "" "TIER" "DEPS")
  if(M_UNPARSED_ARGUMENTS OR NOT M_TIER MATCHES "^[0-9]+$")
    message(FATAL_ERROR "smki_module(${name}): write smki_module(${name} TIER N DEPS MODULE...)")
  endif()
  set(sees ${name})
  set(libs)
  foreach(dep IN LISTS M_DEPS)
    if(NOT TARGET smki_${dep})
      message(FATAL_ERROR "smki_module(${name}): ${dep} is not a module declared before it")
    endif()
    get_target_property(dep_tier smki_${dep} SMKI_TIER)
    if(NOT dep_tier LESS M_TIER)
      message(FATAL_ERROR "smki_module(${name}): tier ${M_TIER} cannot build on ${dep} (tier ${dep_tier}): "
                          "a module sees only modules of lower tiers")
    endif()
    get_target_property(dep_sees smki_${dep} SMKI_SEES)
    list(APPEND sees ${dep_sees})
    list(APPEND libs smki_${dep})
  endforeach()
  list(REMOVE_DUPLICATES sees)

  set(dir ${CMAKE_BINARY_DIR}/include/${name})
  file(REMOVE_RECURSE ${dir})
  file(MAKE_DIRECTORY ${dir})
  foreach(m IN LISTS sees)
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${m} ${dir}/${m} SYMBOLIC)
  endforeach()

  file(GLOB src CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  add_library(smki_${name} STATIC ${src})
  set_target_properties(smki_${name} PROPERTIES SMKI_SEES "${sees}" SMKI_TIER ${M_TIER})
  target_include_directories(smki_${name} PUBLIC ${dir})
  target_link_libraries(smki_${name} PUBLIC ${libs})
  set_property(GLOBAL APPEND PROPERTY SMKI_MODULES ${name})
endfunction()

# Executables above every module (the smki command, tests, benches) see them all.
function(smki_sees_all target)
  target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR})
endfunction()
