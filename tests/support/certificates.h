// A throwaway self-signed certificate for 127.0.0.1/localhost, made with the openssl tool.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tsunagu::testing {

struct CertificateFiles {
    std::string certificate;
    std::string private_key;
};

inline CertificateFiles make_self_signed_certificate(const std::string& dir) {
    CertificateFiles files{dir + "/cert.pem", dir + "/key.pem"};
    const std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " + files.private_key +
        " -out " + files.certificate + " >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) throw std::runtime_error("openssl could not make a certificate");
    return files;
}

}  // namespace tsunagu::testing
