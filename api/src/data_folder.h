// Where the server keeps its data in its folder (--data DIR): the encrypted store, and by default
// the key file that seals it.
#pragma once

#include <filesystem>
#include <string>

namespace tsunagu::api {

// DIR/tsunagu.db: the embedded store (absent when the data is in PostgreSQL).
inline std::string store_path_in(const std::string& data_dir) {
    return (std::filesystem::path(data_dir) / "tsunagu.db").string();
}

// The key file: `key_file` when given (--key-file), else DIR/tsunagu.key.
inline std::string key_path_for(const std::string& data_dir, const std::string& key_file) {
    return key_file.empty() ? (std::filesystem::path(data_dir) / "tsunagu.key").string() : key_file;
}

}  // namespace tsunagu::api
