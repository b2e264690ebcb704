// A private SoftHSM2 token for one test: its own SOFTHSM2_CONF and token directory under a scratch directory,
// a PIN file (0600), URIs for keys on it, and direct PKCS#11 calls the tests use to look under the hood.
#pragma once

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "support/test_util.h"

namespace quorate::testing {

inline constexpr const char* kSoftHsmModule = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";

class SoftHsm {
 public:
  explicit SoftHsm(std::string label = "quorate-test") : label_(std::move(label)) {
    std::filesystem::create_directories(dir_ / "tokens");
    spit(dir_ / "softhsm2.conf",
         "directories.tokendir = " + (dir_ / "tokens").string() + "\nobjectstore.backend = file\nlog.level = ERROR\n");
    // The library (in this process) and every command it runs read the same configuration.
    ::setenv("SOFTHSM2_CONF", (dir_ / "softhsm2.conf").c_str(), 1);
    init_ = run("softhsm2-util --init-token --free --label " + sh(label_) + " --so-pin 1234 --pin 5678");
    spit(dir_ / "pin", "5678\n");
    ::chmod((dir_ / "pin").c_str(), 0600);
  }

  ~SoftHsm();

  const CommandResult& init() const { return init_; }
  const std::string& label() const { return label_; }
  std::filesystem::path dir() const { return dir_.path(); }
  std::filesystem::path pin_file() const { return dir_ / "pin"; }

  // pkcs11:token=LABEL;object=OBJECT?module-path=SOFTHSM&pin-source=file:PIN (plus `extra_query`).
  std::string uri(const std::string& object, bool with_pin = true) const {
    return "pkcs11:token=" + label_ + ";object=" + object + "?module-path=" + kSoftHsmModule +
           (with_pin ? "&pin-source=file:" + pin_file().string() : std::string());
  }

  // pkcs11-tool with this token's module, label and PIN.
  std::string pkcs11_tool(const std::string& args) const {
    return "pkcs11-tool --module " + std::string(kSoftHsmModule) + " --token-label " + sh(label_) +
           " --login --pin 5678 " + args;
  }

 private:
  std::string label_;
  ScratchDir dir_;
  CommandResult init_;
};

// SoftHSM's function list in this process: the same module instance the library under test loaded, so that a
// test can close its sessions or finalize it under it.
inline CK_FUNCTION_LIST_PTR softhsm_functions() {
  void* dl = dlopen(kSoftHsmModule, RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) return nullptr;
  auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
  CK_FUNCTION_LIST_PTR f = nullptr;
  if (get == nullptr || get(&f) != CKR_OK) return nullptr;
  return f;
}

// The slot holding the token labelled `label`, or -1.
inline long softhsm_slot(CK_FUNCTION_LIST_PTR f, const std::string& label) {
  CK_SLOT_ID slots[16];
  CK_ULONG n = 16;
  if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) return -1;
  for (CK_ULONG i = 0; i < n; ++i) {
    CK_TOKEN_INFO ti{};
    if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
    std::string l(reinterpret_cast<char*>(ti.label), sizeof ti.label);
    while (!l.empty() && l.back() == ' ') l.pop_back();
    if (l == label) return static_cast<long>(slots[i]);
  }
  return -1;
}

// Reads attribute `type` of the private key labelled `object` on token `label` (PIN 5678) into `out`; returns
// the CK_RV of C_GetAttributeValue (CKR_GENERAL_ERROR when the key cannot be reached).
inline CK_RV softhsm_private_attr(const std::string& label, const std::string& object, CK_ATTRIBUTE_TYPE type,
                                  std::string& out) {
  CK_FUNCTION_LIST_PTR f = softhsm_functions();
  if (f == nullptr) return -1;
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = f->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) return -1;
  long slot = softhsm_slot(f, label);
  CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
  if (slot < 0 || f->C_OpenSession(static_cast<CK_SLOT_ID>(slot), CKF_SERIAL_SESSION, nullptr, nullptr, &s) != CKR_OK) {
    return -1;
  }
  std::string pin = "5678";
  rv = f->C_Login(s, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()), pin.size());
  CK_RV result = CKR_GENERAL_ERROR;
  if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, const_cast<char*>(object.data()), object.size()}};
    CK_OBJECT_HANDLE o;
    CK_ULONG n = 0;
    if (f->C_FindObjectsInit(s, tmpl, 2) == CKR_OK && f->C_FindObjects(s, &o, 1, &n) == CKR_OK && n == 1) {
      out.assign(256, '\0');
      CK_ATTRIBUTE a{type, out.data(), out.size()};
      result = f->C_GetAttributeValue(s, o, &a, 1);
      out.resize(result == CKR_OK ? a.ulValueLen : 0);
    }
    f->C_FindObjectsFinal(s);
  }
  f->C_CloseSession(s);
  return result;
}

// A CK_BBOOL attribute of that private key: 0 or 1, or -1 when it cannot be read.
inline int softhsm_private_bool(const std::string& label, const std::string& object, CK_ATTRIBUTE_TYPE type) {
  std::string v;
  if (softhsm_private_attr(label, object, type, v) != CKR_OK || v.size() != sizeof(CK_BBOOL)) return -1;
  return v[0] == CK_TRUE ? 1 : 0;
}

// SoftHSM finalized in this process (ignoring "not initialized"), so that the next initialization reads the
// next test's SOFTHSM2_CONF.
inline void softhsm_finalize() {
  if (CK_FUNCTION_LIST_PTR f = softhsm_functions()) f->C_Finalize(nullptr);
}

inline SoftHsm::~SoftHsm() { softhsm_finalize(); }

}  // namespace quorate::testing
