# The target helpers: mc_library, mc_executable, mc_test. Every target is built through one of
# them, so that every target gets the same include paths, warnings and layering (below).
#
# Layering, enforced by include paths. A component is a folder src/<component>/ with its public
# headers in include/mc/<component>/. No target is given include/ or src/ as a whole; at configure
# time each component gets two include roots of symlinks under <build>/layering/:
#   public/<component>/mc/<component>  -> include/mc/<component>/
#   private/<component>/<component>    -> src/<component>/
# A target of a component (the folder its CMakeLists.txt is in) compiles with that component's
# private root, and every library carries its component's public root as a PUBLIC include
# directory. CMake passes PUBLIC include directories on through PUBLIC links (DEPS), so a target
# sees "mc/<dep>/..." exactly for the components it declares (DEPS, PRIVATE_DEPS) and theirs
# declared as DEPS, transitively; "<other>/x.h" (another component's private header) never.
# Sources keep their include lines ("mc/cache/cache_store.h", "agent/state_db.h").
#
# After everything else on every target's include path (-idirafter, so after the system headers
# and after the include directories that links bring in) is <build>/layering/guard/: for every
# header of the tree a stub with an #error that says why the include is refused and what to do.
# It is found only when the real header is not visible to the target, so the build stops with
# that message instead of "No such file or directory". See CONTRIBUTING.md and docs/architecture.md (Layering).
set(MC_LAYERING_DIR ${PROJECT_BINARY_DIR}/layering)

# mc_library(NAME SRCS ... DEPS ... PRIVATE_DEPS ... [INTERNAL]): one static library of the
# component whose folder holds the CMakeLists.txt. DEPS: what its public headers need (passed on
# to its dependents); PRIVATE_DEPS: what only its sources need. INTERNAL: a component with no
# public headers (src/sqlite): its src/<component>/ headers are what its dependents include.
function(mc_library name)
  cmake_parse_arguments(ARG "INTERNAL" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  _mc_component(component)
  add_library(mc_${name} STATIC ${ARG_SRCS})
  _mc_include_roots(${component} public private)
  if(ARG_INTERNAL)
    set_property(GLOBAL APPEND PROPERTY MC_INTERNAL_COMPONENTS ${component})
    target_include_directories(mc_${name} PUBLIC ${private})
  else()
    target_include_directories(mc_${name} PRIVATE ${private})
  endif()
  if(public)
    target_include_directories(mc_${name} PUBLIC ${public})
  endif()
  _mc_guarded(mc_${name})
  target_link_libraries(mc_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  mc_warnings(mc_${name})
endfunction()

# mc_executable(NAME SRCS ... DEPS ...): a program of the component whose folder holds the
# CMakeLists.txt; it sees that component's headers and its DEPS' public ones.
function(mc_executable name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  _mc_private_includes(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  mc_warnings(${name})
endfunction()

# mc_test(NAME SRCS ... DEPS ... LABELS ...): one GoogleTest binary, registered with CTest. Like
# mc_executable, it sees its own component's private headers and its DEPS' public ones: a helper
# that tests of several components share is a library (src/testing, mc_test_support).
function(mc_test name)
  if(NOT MC_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  _mc_private_includes(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    MC_BINARY_DIR="${PROJECT_BINARY_DIR}" MC_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  mc_warnings(${name})
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

function(mc_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
  if(MC_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# mc_layering_guards(): writes the #error stubs of <build>/layering/guard/ for every header of
# include/mc/ and src/. Called once, after every component is added (it needs to know which are
# INTERNAL). Headers added later re-run CMake (CONFIGURE_DEPENDS).
function(mc_layering_guards)
  set(guard ${MC_LAYERING_DIR}/guard)
  file(REMOVE_RECURSE ${guard})
  get_property(internal GLOBAL PROPERTY MC_INTERNAL_COMPONENTS)
  file(GLOB public_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/include
       ${PROJECT_SOURCE_DIR}/include/mc/*/*.h)
  foreach(header IN LISTS public_headers)
    string(REGEX REPLACE "^mc/([^/]+)/.*" "\\1" component "${header}")
    _mc_guard(${guard} "${header}"
      "'${header}' is a public header of the ${component} component, and this target does not \
depend on it. Add mc_${component} (or the library of that component you need) to the target's \
DEPS or PRIVATE_DEPS in its CMakeLists.txt if docs/architecture.md lets this component depend on \
${component}; otherwise the include breaks the layering (CONTRIBUTING.md).")
  endforeach()
  file(GLOB private_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/src
       ${PROJECT_SOURCE_DIR}/src/*/*.h)
  foreach(header IN LISTS private_headers)
    string(REGEX REPLACE "^([^/]+)/.*" "\\1" component "${header}")
    if(component IN_LIST internal)
      set(why "'${header}' belongs to the internal ${component} library, and this target does not \
link it: add mc_${component} to its PRIVATE_DEPS if docs/architecture.md allows it.")
    else()
      set(why "'${header}' is private to the ${component} component (src/${component}/): other \
components use its public headers (include/mc/${component}/). Use one, or give ${component} a \
public interface for what you need; see CONTRIBUTING.md, Layering.")
    endif()
    _mc_guard(${guard} "${header}" "${why}")
  endforeach()
endfunction()

# ---- implementation ----

# The component of the CMakeLists.txt being processed: its folder's name under src/.
function(_mc_component out)
  get_filename_component(component ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  set(${out} ${component} PARENT_SCOPE)
endfunction()

# Creates (once) the component's roots; sets `public_out` (empty when the component has no
# include/mc/<component>/) and `private_out`.
function(_mc_include_roots component public_out private_out)
  set(private ${MC_LAYERING_DIR}/private/${component})
  _mc_link(${PROJECT_SOURCE_DIR}/src/${component} ${private}/${component})
  set(public "")
  if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/include/mc/${component})
    set(public ${MC_LAYERING_DIR}/public/${component})
    _mc_link(${PROJECT_SOURCE_DIR}/include/mc/${component} ${public}/mc/${component})
  endif()
  set(${public_out} "${public}" PARENT_SCOPE)
  set(${private_out} "${private}" PARENT_SCOPE)
endfunction()

# A program or test: its component's private and public roots (a test of the component reads
# its public headers even when it links only another library of it), then the guards.
function(_mc_private_includes target)
  _mc_component(component)
  _mc_include_roots(${component} public private)
  target_include_directories(${target} PRIVATE ${private} ${public})
  _mc_guarded(${target})
endfunction()

function(_mc_guarded target)
  target_compile_options(${target} PRIVATE -idirafter ${MC_LAYERING_DIR}/guard)
endfunction()

# Makes `link` a symlink to `target` unless it already is one (left alone, so that its time does
# not change; a link left by a configure for another checkout is replaced).
function(_mc_link target link)
  if(IS_SYMLINK ${link})
    file(READ_SYMLINK ${link} current)
    if(current STREQUAL target)
      return()
    endif()
  endif()
  get_filename_component(dir ${link} DIRECTORY)
  file(MAKE_DIRECTORY ${dir})
  file(REMOVE ${link})
  file(CREATE_LINK ${target} ${link} SYMBOLIC)
endfunction()

function(_mc_guard guard header why)
  file(WRITE ${guard}/${header}
       "// Generated by cmake/McTargets.cmake: found only when the real header is not visible.\n"
       "#error \"layering: ${why}\"\n")
endfunction()
