// The supervisor's web page (web/ in the source tree), compiled into the server at build time by
// api/embed_web_assets.cmake, so that the server needs no files at run time.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace tsunagu::api {

struct WebAsset {
    std::string_view path;          // the URL path: "/" for web/index.html, else "/<path in web/>"
    std::string_view content_type;  // from the file's extension, with charset for text
    std::string_view body;
};

// Every file under web/, in a fixed order. The storage lives as long as the program.
std::span<const WebAsset> web_assets();

}  // namespace tsunagu::api
