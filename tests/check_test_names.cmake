# Catch2 2.13 prints a test's or section's name as a header wrapped at 79 columns, indenting the
# lines after the first by the position of the name's first ": ". When that position is near the
# end of the line it prints "-" lines for ever: one failing test with such a name filled a disk
# with 82 GB. So a name longer than a line keeps its first ": " within the first 66 characters
# (each further line then has at least 10 columns).
# Names holding ";" are refused too (CTest would split them).
# Run as: cmake -DSOURCE_DIR=<repo> -P check_test_names.cmake
file(GLOB_RECURSE sources "${SOURCE_DIR}/tests/*.cpp" "${SOURCE_DIR}/tests/*.h")
set(bad 0)
foreach(source ${sources})
  # A ";" in a test's name splits it in two for CTest (a list separator), and neither half runs.
  file(STRINGS "${source}" semicolons REGEX "TEST_CASE\\(\"[^\"]*;")
  if(semicolons)
    message(SEND_ERROR "${source}: a TEST_CASE name holds \";\", which CTest would split in two; use a comma")
    math(EXPR bad "${bad} + 1")
  endif()
  file(STRINGS "${source}" lines REGEX "(TEST_CASE|SECTION)\\(\"")
  foreach(line IN LISTS lines)
    if(line MATCHES "(TEST_CASE|SECTION)\\(\"([^\"]*)\"")
      set(name "${CMAKE_MATCH_2}")
      string(LENGTH "${name}" length)
      string(FIND "${name}" ": " colon)
      if(length GREATER 78 AND colon GREATER 66)
        message(SEND_ERROR "${source}: \"${name}\": its first \": \" is at column ${colon}; "
                           "move it into the first 66 characters or drop it (Catch2 would loop printing it)")
        math(EXPR bad "${bad} + 1")
      endif()
    endif()
  endforeach()
endforeach()
if(bad GREATER 0)
  message(FATAL_ERROR "${bad} test name(s) that CTest or Catch2 cannot use")
endif()
