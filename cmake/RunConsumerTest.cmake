# Driver for the consumer_* tests:  cmake -D... -P RunConsumerTest.cmake
#
#   SOURCE_DIR, BINARY_DIR   the consumer project and a scratch build directory (wiped first)
#   INITIAL_CACHE            file given to the consumer's configure step as `cmake -C`
#   GENERATOR, MAKE_PROGRAM  same generator as the parent build
#   CONFIG                   build configuration
#   INSTALL_FROM, INSTALL_PREFIX (optional)
#                            first run `cmake --install INSTALL_FROM --prefix INSTALL_PREFIX`
#
# The consumer is built with `ctest --build-and-test` and its `consumer` program is run, then
# its `consumer_io` program (FITS and PNG through diffpm::io) and, where diffpm has a device
# backend, its `consumer_device` program, from the build directory.

foreach(_var SOURCE_DIR BINARY_DIR INITIAL_CACHE GENERATOR)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "RunConsumerTest.cmake: ${_var} is not set")
  endif()
endforeach()

if(DEFINED INSTALL_FROM)
  # Start from an empty prefix so that files from an earlier build cannot hide a missing
  # install rule.
  file(REMOVE_RECURSE "${INSTALL_PREFIX}")
  set(_config_args)
  if(CONFIG)
    set(_config_args --config "${CONFIG}")
  endif()
  execute_process(
    COMMAND "${CMAKE_COMMAND}" --install "${INSTALL_FROM}" --prefix "${INSTALL_PREFIX}"
            ${_config_args}
    RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "Installing diffpm into ${INSTALL_PREFIX} failed (${_rc})")
  endif()
endif()

file(REMOVE_RECURSE "${BINARY_DIR}")

set(_make_args)
if(MAKE_PROGRAM)
  set(_make_args --build-makeprogram "${MAKE_PROGRAM}")
endif()
set(_ctest_config)
if(CONFIG)
  set(_ctest_config --build-config "${CONFIG}")
endif()

# CMAKE_CTEST_COMMAND is not defined in script mode; ctest sits next to cmake.
get_filename_component(_bindir "${CMAKE_COMMAND}" DIRECTORY)
find_program(_ctest NAMES ctest HINTS "${_bindir}" NO_DEFAULT_PATH)
if(NOT _ctest)
  find_program(_ctest NAMES ctest REQUIRED)
endif()

execute_process(
  COMMAND "${_ctest}" --build-and-test "${SOURCE_DIR}" "${BINARY_DIR}"
          --build-generator "${GENERATOR}"
          ${_make_args}
          ${_ctest_config}
          --build-options "-C${INITIAL_CACHE}"
          --test-command consumer
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "Consumer project ${SOURCE_DIR} failed (${_rc})")
endif()

# Single-configuration generators put the program in the build directory, multi-configuration
# ones in a folder named after the configuration.
set(_io_program "${BINARY_DIR}/consumer_io")
if(CONFIG AND EXISTS "${BINARY_DIR}/${CONFIG}/consumer_io")
  set(_io_program "${BINARY_DIR}/${CONFIG}/consumer_io")
endif()
execute_process(COMMAND "${_io_program}" WORKING_DIRECTORY "${BINARY_DIR}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "Consumer program ${_io_program} failed (${_rc})")
endif()

# consumer_device exists when diffpm has a device backend (it says "skipped" without a GPU).
set(_device_program "${BINARY_DIR}/consumer_device")
if(CONFIG AND EXISTS "${BINARY_DIR}/${CONFIG}/consumer_device")
  set(_device_program "${BINARY_DIR}/${CONFIG}/consumer_device")
endif()
if(EXISTS "${_device_program}")
  execute_process(COMMAND "${_device_program}" WORKING_DIRECTORY "${BINARY_DIR}"
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "Consumer program ${_device_program} failed (${_rc})")
  endif()
endif()
