// PKCS#11 keys through the module's C API directly (p11-kit's pkcs11.h; the module dlopen()ed, or found by name
// through p11-kit). libp11 0.4.12 (Debian 12) has no Ed25519, so it is not used; see docs/decisions.md.
#include "quorate/attest/pkcs11.h"

#include <dlfcn.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"

#ifndef QUORATE_P11_KIT_PROXY
#define QUORATE_P11_KIT_PROXY "p11-kit-proxy.so"
#endif

namespace quorate::attest {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// URI

constexpr std::string_view kScheme = "pkcs11:";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `raw`, refusing characters a URI may not hold (controls, space, '"<>\^`{}#', non-ASCII) and
// '%' not followed by two hex digits. `in_path`: '/' and '?' must be percent-encoded too (RFC 7512 p11-pchar).
Result<std::string> percent_decode(std::string_view raw, bool in_path, const std::string& attr) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    auto uc = static_cast<unsigned char>(c);
    if (c == '%') {
      int hi = i + 1 < raw.size() ? hex_value(raw[i + 1]) : -1;
      int lo = i + 2 < raw.size() ? hex_value(raw[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::bad_input("PKCS#11 URI attribute '" + attr + "': '%' not followed by two hex digits");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
      continue;
    }
    if (uc <= 0x20 || uc >= 0x7f || std::strchr("\"<>\\^`{}#", c) != nullptr || (in_path && (c == '/' || c == '?'))) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%%%02X", uc);
      return Status::bad_input("PKCS#11 URI attribute '" + attr + "': character 0x" + std::string(buf + 1) +
                               " must be percent-encoded (write " + buf + ")");
    }
    out.push_back(c);
  }
  return out;
}

Status set_once(std::optional<std::string>& slot, const std::string& attr, std::string value) {
  if (slot) return Status::bad_input("PKCS#11 URI: attribute '" + attr + "' given twice");
  slot = std::move(value);
  return Status::ok_status();
}

Status set_once(std::string& slot, bool& seen, const std::string& attr, std::string value) {
  if (seen) return Status::bad_input("PKCS#11 URI: attribute '" + attr + "' given twice");
  if (value.empty()) return Status::bad_input("PKCS#11 URI: attribute '" + attr + "' is empty");
  seen = true;
  slot = std::move(value);
  return Status::ok_status();
}

// ---------------------------------------------------------------------------------------------------------------
// Return values

std::string rv_name(CK_RV rv) {
  static const std::map<CK_RV, const char*> names = {
      {CKR_OK, "CKR_OK"},
      {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
      {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
      {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
      {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
      {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
      {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
      {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
      {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
      {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
      {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
      {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
      {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
      {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID"},
      {CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"},
      {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
      {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
      {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
      {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
      {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
      {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
      {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
      {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
      {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
      {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
      {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
      {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
      {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
      {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
      {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
      {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
      {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
      {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
      {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
      {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
      {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
      {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
      {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
      {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
      {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
      {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
      {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
      {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
      {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
      {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
  };
  auto it = names.find(rv);
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(rv));
  return it == names.end() ? std::string(hex) : std::string(it->second) + " (" + hex + ")";
}

bool is_pin_error(CK_RV rv) {
  return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED ||
         rv == CKR_PIN_LOCKED;
}

// Failures after which a new session (and, for CKR_CRYPTOKI_NOT_INITIALIZED, a new C_Initialize) may help.
bool is_session_error(CK_RV rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
         rv == CKR_DEVICE_ERROR || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_CRYPTOKI_NOT_INITIALIZED ||
         rv == CKR_GENERAL_ERROR || rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID ||
         rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_DEVICE_MEMORY || rv == CKR_FUNCTION_FAILED;
}

Status ck_status(const std::string& what, CK_RV rv) { return Status::io(what + " failed: " + rv_name(rv)); }

// ---------------------------------------------------------------------------------------------------------------
// Modules

// A loaded and initialized module. Shared by every key of the process that uses the same module, so that one
// C_Initialize/C_Finalize pair brackets them all. The library is never dlclose()d: modules link crypto libraries
// that do not all survive being unloaded.
struct Module {
  std::string what;  // "module /path/x.so" for messages
  CK_FUNCTION_LIST_PTR f = nullptr;
  CK_FUNCTION_LIST** p11kit_modules = nullptr;  // module-name: the p11-kit registry list that owns f
  bool finalize = false;
  std::mutex init_mu;

  ~Module() {
    if (p11kit_modules != nullptr) {
      p11_kit_modules_finalize_and_release(p11kit_modules);
    } else if (finalize && f != nullptr) {
      f->C_Finalize(nullptr);
    }
  }

  // C_Initialize again after something finalized the module under us.
  CK_RV reinitialize() {
    std::lock_guard<std::mutex> lock(init_mu);
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    if (rv == CKR_OK) finalize = true;
    return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
  }
};

std::mutex g_modules_mu;
std::map<std::string, std::weak_ptr<Module>>& module_registry() {
  static auto* m = new std::map<std::string, std::weak_ptr<Module>>();
  return *m;
}

Result<std::shared_ptr<Module>> load_module(const Pkcs11Uri& uri) {
  std::string key = !uri.module_name.empty()
                        ? "name:" + uri.module_name
                        : "path:" + (uri.module_path.empty() ? std::string(default_pkcs11_module()) : uri.module_path);
  std::lock_guard<std::mutex> lock(g_modules_mu);
  auto& reg = module_registry();
  if (auto it = reg.find(key); it != reg.end()) {
    if (auto m = it->second.lock()) return m;
  }
  auto m = std::make_shared<Module>();
  if (!uri.module_name.empty()) {
    m->what = "p11-kit module '" + uri.module_name + "'";
    m->p11kit_modules = p11_kit_modules_load_and_initialize(0);
    if (m->p11kit_modules == nullptr) {
      const char* msg = p11_kit_message();
      return Status::bad_input("cannot load the p11-kit modules: " + std::string(msg ? msg : "unknown error"));
    }
    m->f = p11_kit_module_for_name(m->p11kit_modules, uri.module_name.c_str());
    if (m->f == nullptr) {
      std::string names;
      for (CK_FUNCTION_LIST** p = m->p11kit_modules; *p != nullptr; ++p) {
        char* n = p11_kit_module_get_name(*p);
        if (n != nullptr) {
          names += std::string(names.empty() ? "" : ", ") + "'" + n + "'";
          free(n);
        }
      }
      return Status::bad_input("module-name '" + uri.module_name + "': no such module registered with p11-kit" +
                               (names.empty() ? std::string(" (none are)") : " (registered: " + names + ")"));
    }
  } else {
    std::string path = uri.module_path.empty() ? default_pkcs11_module() : uri.module_path;
    m->what = "module " + path;
    void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) {
      const char* e = dlerror();
      return Status::bad_input("cannot load PKCS#11 module " + path + ": " + (e ? e : "dlopen failed"));
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
    if (get == nullptr) {
      return Status::bad_input(path + " is not a PKCS#11 module (it has no C_GetFunctionList)");
    }
    CK_RV rv = get(&m->f);
    if (rv != CKR_OK || m->f == nullptr) {
      return Status::bad_input(path + ": C_GetFunctionList failed: " + rv_name(rv) + "; not a usable PKCS#11 module");
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv == CKR_OK) {
      m->finalize = true;
    } else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      return Status::bad_input(path + ": C_Initialize failed: " + rv_name(rv));
    }
  }
  reg[key] = m;
  return m;
}

std::string trim_padded(const unsigned char* field, size_t n) {
  std::string s(reinterpret_cast<const char*>(field), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions and objects

struct Session {
  std::shared_ptr<Module> mod;
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_SLOT_ID slot = 0;
  std::string token_label;
  bool login_required = false;

  Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&& o) noexcept { *this = std::move(o); }
  Session& operator=(Session&& o) noexcept {
    close();
    mod = std::move(o.mod);
    h = o.h;
    slot = o.slot;
    token_label = std::move(o.token_label);
    login_required = o.login_required;
    o.h = CK_INVALID_HANDLE;
    return *this;
  }
  ~Session() { close(); }
  void close() {
    if (mod && h != CK_INVALID_HANDLE) mod->f->C_CloseSession(h);
    h = CK_INVALID_HANDLE;
  }
};

// The token the URI selects: exactly one present token whose label, manufacturer, model, serial and slot id
// match those the URI gives.
Result<std::pair<CK_SLOT_ID, CK_TOKEN_INFO>> find_token(Module& m, const Pkcs11Uri& uri, CK_RV* rv_out) {
  CK_ULONG n = 0;
  CK_RV rv = m.f->C_GetSlotList(CK_TRUE, nullptr, &n);
  *rv_out = rv;
  if (rv != CKR_OK) return ck_status(m.what + ": C_GetSlotList", rv);
  std::vector<CK_SLOT_ID> slots(n);
  rv = m.f->C_GetSlotList(CK_TRUE, slots.data(), &n);
  *rv_out = rv;
  if (rv != CKR_OK) return ck_status(m.what + ": C_GetSlotList", rv);
  slots.resize(n);
  std::vector<std::pair<CK_SLOT_ID, CK_TOKEN_INFO>> found;
  std::string available;
  for (CK_SLOT_ID s : slots) {
    CK_TOKEN_INFO ti{};
    if (m.f->C_GetTokenInfo(s, &ti) != CKR_OK) continue;
    std::string label = trim_padded(ti.label, sizeof ti.label);
    if (!(ti.flags & CKF_TOKEN_INITIALIZED)) continue;
    available += std::string(available.empty() ? "" : ", ") + "'" + label + "'";
    if (uri.token && label != *uri.token) continue;
    if (uri.manufacturer && trim_padded(ti.manufacturerID, sizeof ti.manufacturerID) != *uri.manufacturer) continue;
    if (uri.model && trim_padded(ti.model, sizeof ti.model) != *uri.model) continue;
    if (uri.serial && trim_padded(ti.serialNumber, sizeof ti.serialNumber) != *uri.serial) continue;
    if (uri.slot_id && s != *uri.slot_id) continue;
    found.emplace_back(s, ti);
  }
  if (found.empty()) {
    return Status::bad_input("no token matches " + uri.redacted + " in " + m.what +
                             " (tokens present: " + (available.empty() ? std::string("none") : available) + ")");
  }
  if (found.size() > 1) {
    return Status::bad_input(std::to_string(found.size()) + " tokens match " + uri.redacted +
                             "; name one with token= or serial=");
  }
  return found.front();
}

Result<std::string> read_pin(const Pkcs11Uri& uri) {
  if (uri.pin_value) return *uri.pin_value;
  if (uri.pin_source.empty()) return std::string();
  std::string path = uri.pin_source;
  if (path.rfind("file://", 0) == 0) {
    path = path.substr(7);
  } else if (path.rfind("file:", 0) == 0) {
    path = path.substr(5);
  } else if (path.find(':') != std::string::npos && path.front() != '/' && path.front() != '.') {
    return Status::bad_input("pin-source '" + uri.pin_source + "': only file:PATH is supported");
  }
  auto text = read_secret_file(path, 4096, "pin-source file");
  if (!text.ok()) return text.status().with_context("pin-source");
  std::string pin = text.value();
  auto nl = pin.find_first_of("\r\n");
  if (nl != std::string::npos) pin.resize(nl);
  if (pin.empty()) return Status::bad_input("pin-source " + path + ": empty PIN");
  return pin;
}

Status pin_refused(const std::string& token, CK_RV rv) {
  return Status::bad_input("PIN refused by token '" + token + "' (" + rv_name(rv) +
                           "); not retried, since tokens lock after a few wrong PINs");
}

// Logs the session's application in as the user. `force`: log in even when the token does not say it needs it
// (private objects are only visible after login). CKR_USER_ALREADY_LOGGED_IN is success.
Status login(Session& s, const Pkcs11Uri& uri, bool force, CK_RV* rv_out) {
  *rv_out = CKR_OK;
  auto pin = QR_TRY(read_pin(uri));
  if (pin.empty()) {
    if (s.login_required && force) {
      return Status::bad_input("token '" + s.token_label +
                               "' needs a PIN: add pin-source=file:PATH (or pin-value=) to the URI");
    }
    return Status::ok_status();
  }
  CK_RV rv = s.mod->f->C_Login(s.h, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()), pin.size());
  *rv_out = rv;
  if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return Status::ok_status();
  if (is_pin_error(rv)) return pin_refused(s.token_label, rv);
  return ck_status("C_Login on token '" + s.token_label + "'", rv);
}

Result<Session> open_session(const std::shared_ptr<Module>& mod, const Pkcs11Uri& uri, bool rw, CK_RV* rv_out) {
  auto [slot, ti] = QR_TRY(find_token(*mod, uri, rv_out));
  Session s;
  s.mod = mod;
  s.slot = slot;
  s.token_label = trim_padded(ti.label, sizeof ti.label);
  s.login_required = (ti.flags & CKF_LOGIN_REQUIRED) != 0;
  CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
  CK_RV rv = mod->f->C_OpenSession(slot, flags, nullptr, nullptr, &s.h);
  *rv_out = rv;
  if (rv != CKR_OK) {
    s.h = CK_INVALID_HANDLE;
    return ck_status("C_OpenSession on token '" + s.token_label + "'", rv);
  }
  return s;
}

Result<std::vector<CK_OBJECT_HANDLE>> find_objects(Session& s, CK_OBJECT_CLASS cls,
                                                   const std::optional<std::string>& label,
                                                   const std::optional<std::string>& id, CK_RV* rv_out) {
  std::vector<CK_ATTRIBUTE> tmpl;
  tmpl.push_back({CKA_CLASS, &cls, sizeof cls});
  if (label) tmpl.push_back({CKA_LABEL, const_cast<char*>(label->data()), label->size()});
  if (id) tmpl.push_back({CKA_ID, const_cast<char*>(id->data()), id->size()});
  CK_RV rv = s.mod->f->C_FindObjectsInit(s.h, tmpl.data(), tmpl.size());
  *rv_out = rv;
  if (rv != CKR_OK) return ck_status("C_FindObjectsInit", rv);
  std::vector<CK_OBJECT_HANDLE> out(8);
  CK_ULONG n = 0;
  rv = s.mod->f->C_FindObjects(s.h, out.data(), out.size(), &n);
  s.mod->f->C_FindObjectsFinal(s.h);
  *rv_out = rv;
  if (rv != CKR_OK) return ck_status("C_FindObjects", rv);
  out.resize(n);
  return out;
}

Result<std::string> get_attr(Session& s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, const char* name, CK_RV* rv_out) {
  CK_ATTRIBUTE a{type, nullptr, 0};
  CK_RV rv = s.mod->f->C_GetAttributeValue(s.h, o, &a, 1);
  *rv_out = rv;
  if (rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
    return ck_status(std::string("reading ") + name, rv == CKR_OK ? CKR_ATTRIBUTE_TYPE_INVALID : rv);
  }
  std::string v(a.ulValueLen, '\0');
  a.pValue = v.data();
  rv = s.mod->f->C_GetAttributeValue(s.h, o, &a, 1);
  *rv_out = rv;
  if (rv != CKR_OK) return ck_status(std::string("reading ") + name, rv);
  v.resize(a.ulValueLen);
  return v;
}

std::string describe_object(const Pkcs11Uri& uri) {
  std::string d;
  if (uri.object) d += "object='" + *uri.object + "'";
  if (uri.id) {
    std::string hex;
    for (unsigned char c : *uri.id) {
      char b[3];
      std::snprintf(b, sizeof b, "%02x", c);
      hex += b;
    }
    d += std::string(d.empty() ? "" : " ") + "id=" + hex;
  }
  return d.empty() ? "any object" : d;
}

const std::string kOidP256("\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", 10);
const std::string kOidEd25519("\x06\x03\x2b\x65\x70", 5);
const std::string kOidEd25519Gnu("\x06\x09\x2b\x06\x01\x04\x01\xda\x47\x0f\x01", 11);
const std::string kNameEd25519(
    "\x13\x0c"
    "edwards25519",
    14);

// A DER SubjectPublicKeyInfo from the token's CKA_KEY_TYPE, CKA_EC_PARAMS and CKA_EC_POINT (a DER OCTET
// STRING around the point, or by some modules the bare point).
Result<PublicKey> public_key_from_attrs(CK_KEY_TYPE kt, const std::string& params, std::string point) {
  auto unwrap = [&](size_t len) {
    if (point.size() == len + 2 && static_cast<unsigned char>(point[0]) == 0x04 &&
        static_cast<unsigned char>(point[1]) == len) {
      point = point.substr(2);
    }
  };
  if (kt == CKK_EC_EDWARDS) {
    if (params != kOidEd25519 && params != kOidEd25519Gnu && params != kNameEd25519) {
      return Status::unsupported("the token's EdDSA key is not on Ed25519 (only Ed25519 and P-256 are supported)");
    }
    unwrap(32);
    if (point.size() != 32) return Status::bad_input("the token's Ed25519 CKA_EC_POINT is not 32 bytes");
    return PublicKey::from_der(std::string("\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00", 12) + point);
  }
  if (kt == CKK_EC) {
    if (params != kOidP256)
      return Status::unsupported("the token's EC key is not on P-256 (only Ed25519 and P-256 are supported)");
    unwrap(65);
    if (point.size() != 65 || point[0] != 0x04)
      return Status::bad_input("the token's P-256 CKA_EC_POINT is not an uncompressed point");
    return PublicKey::from_der(
        std::string("\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce"
                    "\x3d\x03\x01\x07\x03\x42\x00",
                    26) +
        point);
  }
  return Status::unsupported("the token's key is neither Ed25519 nor ECDSA P-256 (CKA_KEY_TYPE " + std::to_string(kt) +
                             ")");
}

Result<PublicKey> read_public_object(Session& s, CK_OBJECT_HANDLE pub, CK_RV* rv) {
  auto kt_raw = QR_TRY(get_attr(s, pub, CKA_KEY_TYPE, "CKA_KEY_TYPE", rv));
  if (kt_raw.size() != sizeof(CK_KEY_TYPE)) return Status::bad_input("the token's CKA_KEY_TYPE has a bad size");
  CK_KEY_TYPE kt;
  std::memcpy(&kt, kt_raw.data(), sizeof kt);
  auto params = QR_TRY(get_attr(s, pub, CKA_EC_PARAMS, "CKA_EC_PARAMS", rv));
  auto point = QR_TRY(get_attr(s, pub, CKA_EC_POINT, "CKA_EC_POINT", rv));
  return public_key_from_attrs(kt, params, point);
}

// Finds the URI's public key object (after the private key's CKA_ID when the URI gives only a label).
Result<PublicKey> find_public_key(Session& s, const Pkcs11Uri& uri, const std::optional<std::string>& priv_id,
                                  CK_RV* rv) {
  std::optional<std::string> id = uri.id ? uri.id : priv_id;
  auto pubs = QR_TRY(find_objects(s, CKO_PUBLIC_KEY, id ? std::nullopt : uri.object, id, rv));
  if (pubs.empty() && id && uri.object) pubs = QR_TRY(find_objects(s, CKO_PUBLIC_KEY, uri.object, std::nullopt, rv));
  if (pubs.empty()) {
    return Status::bad_input("token '" + s.token_label + "' has no public key object for " + describe_object(uri) +
                             " (the public key is read from it)");
  }
  if (pubs.size() > 1) {
    return Status::bad_input("token '" + s.token_label + "' has " + std::to_string(pubs.size()) +
                             " public keys matching " + describe_object(uri) + "; name one with id=");
  }
  return read_public_object(s, pubs.front(), rv);
}

// The raw signature from the token, converted: Ed25519 as is (64 bytes), ECDSA r||s to DER.
Result<std::string> token_sign(Session& s, CK_OBJECT_HANDLE key, KeyType type, std::string_view message,
                               CK_RV* rv_out) {
  std::string input;
  CK_MECHANISM mech{type == KeyType::kEd25519 ? CKM_EDDSA : CKM_ECDSA, nullptr, 0};
  if (type == KeyType::kEd25519) {
    input.assign(message);
  } else {
    Sha256 h;
    h.update(message);
    input = h.finish_raw();
  }
  CK_RV rv = s.mod->f->C_SignInit(s.h, &mech, key);
  *rv_out = rv;
  if (rv != CKR_OK) return ck_status("C_SignInit on token '" + s.token_label + "'", rv);
  std::string sig(256, '\0');
  CK_ULONG len = sig.size();
  rv = s.mod->f->C_Sign(s.h, reinterpret_cast<CK_BYTE_PTR>(input.data()), input.size(),
                        reinterpret_cast<CK_BYTE_PTR>(sig.data()), &len);
  *rv_out = rv;
  if (rv != CKR_OK) return ck_status("C_Sign on token '" + s.token_label + "'", rv);
  sig.resize(len);
  if (type == KeyType::kEd25519) {
    if (sig.size() != 64)
      return Status::internal("the token's Ed25519 signature is " + std::to_string(len) + " bytes, not 64");
    return sig;
  }
  if (sig.size() != 64)
    return Status::internal("the token's P-256 signature is " + std::to_string(len) + " bytes, not 64 (r||s)");
  ECDSA_SIG* es = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
  BIGNUM* ss = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
  if (es == nullptr || r == nullptr || ss == nullptr || ECDSA_SIG_set0(es, r, ss) != 1) {
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(ss);
    return Status::internal("cannot encode the ECDSA signature");
  }
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (n <= 0) return Status::internal("cannot encode the ECDSA signature");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

// An open, logged-in session with the private key found and its public key read.
struct KeySession {
  Session s;
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  std::optional<PublicKey> pub;
};

Result<KeySession> open_key(const std::shared_ptr<Module>& mod, const Pkcs11Uri& uri, CK_RV* rv) {
  KeySession k;
  k.s = QR_TRY(open_session(mod, uri, false, rv));
  QR_RETURN_IF_ERROR(login(k.s, uri, true, rv));
  auto privs = QR_TRY(find_objects(k.s, CKO_PRIVATE_KEY, uri.object, uri.id, rv));
  if (privs.empty()) {
    return Status::bad_input("token '" + k.s.token_label + "' has no private key with " + describe_object(uri) +
                             (uri.pin_value || !uri.pin_source.empty()
                                  ? ""
                                  : " (private keys are only visible after login: is a PIN needed?)"));
  }
  if (privs.size() > 1) {
    return Status::bad_input("token '" + k.s.token_label + "' has " + std::to_string(privs.size()) +
                             " private keys matching " + describe_object(uri) + "; name one with object= or id=");
  }
  k.key = privs.front();
  std::optional<std::string> priv_id;
  CK_RV ignored;
  if (auto id = get_attr(k.s, k.key, CKA_ID, "CKA_ID", &ignored); id.ok() && !id.value().empty()) priv_id = id.value();
  k.pub = QR_TRY(find_public_key(k.s, uri, priv_id, rv));
  return k;
}

class Pkcs11Signer final : public Signer {
 public:
  Pkcs11Signer(Pkcs11Uri uri, std::shared_ptr<Module> mod, KeySession k)
      : uri_(std::move(uri)), mod_(std::move(mod)), pub_(*k.pub), k_(std::move(k)) {}
  KeyType type() const override { return pub_.type(); }
  const std::string& keyid() const override { return pub_.keyid(); }
  const PublicKey& public_key() const override { return pub_; }

  Result<std::string> sign(std::string_view message) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (refused_) return *refused_;
    CK_RV rv = CKR_OK;
    if (k_.s.h != CK_INVALID_HANDLE) {
      auto sig = token_sign(k_.s, k_.key, type(), message, &rv);
      if (sig.ok() || !is_session_error(rv)) return sig;
      first_error_ = sig.status().message();
    }
    // The session is gone (or was never reopened): a new one, then one more try.
    QR_RETURN_IF_ERROR(reopen());
    ++reopens_;
    auto sig = token_sign(k_.s, k_.key, type(), message, &rv);
    if (!sig.ok()) k_.s.close();
    return sig;
  }

  // How many times the session was reopened (tests and logs).
  int reopens() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reopens_;
  }

 private:
  Status reopen() const {
    k_.s.close();
    CK_RV rv = CKR_OK;
    auto k = open_key(mod_, uri_, &rv);
    if (!k.ok() && rv == CKR_CRYPTOKI_NOT_INITIALIZED && mod_->p11kit_modules == nullptr) {
      CK_RV irv = mod_->reinitialize();
      if (irv != CKR_OK) return ck_status(mod_->what + ": C_Initialize", irv);
      k = open_key(mod_, uri_, &rv);
    }
    if (!k.ok()) {
      if (is_pin_error(rv)) refused_ = k.status();
      std::string context = "signing through " + uri_.redacted;
      if (!first_error_.empty()) context += " (after " + first_error_ + ")";
      return k.status().with_context(context);
    }
    if (k.value().pub->keyid() != pub_.keyid()) {
      return Status::bad_input("the key at " + uri_.redacted + " is now " + k.value().pub->keyid() + ", not " +
                               pub_.keyid() + " as when the signer opened; refusing to sign with another key");
    }
    k_ = std::move(k).value();
    return Status::ok_status();
  }

  Pkcs11Uri uri_;
  std::shared_ptr<Module> mod_;
  PublicKey pub_;
  mutable std::mutex mu_;
  mutable KeySession k_;
  mutable std::optional<Status> refused_;
  mutable std::string first_error_;
  mutable int reopens_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------

bool is_pkcs11_uri(std::string_view key) {
  if (key.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(key[i])) != kScheme[i]) return false;
  }
  return true;
}

const char* default_pkcs11_module() { return QUORATE_P11_KIT_PROXY; }

Result<Pkcs11Uri> parse_pkcs11_uri(std::string_view text) {
  if (!is_pkcs11_uri(text)) return Status::bad_input("not a PKCS#11 URI (it must start with 'pkcs11:')");
  std::string_view rest = text.substr(kScheme.size());
  if (rest.find('#') != std::string_view::npos)
    return Status::bad_input("PKCS#11 URI: a fragment ('#') is not allowed");
  std::string_view path = rest, query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    path = rest.substr(0, q);
    query = rest.substr(q + 1);
  }
  Pkcs11Uri u;
  bool seen_path = false, seen_name = false, seen_source = false;
  std::string redacted(kScheme);
  auto split = [](std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    while (true) {
      size_t e = s.find(sep, start);
      parts.push_back(s.substr(start, e == std::string_view::npos ? std::string_view::npos : e - start));
      if (e == std::string_view::npos) break;
      start = e + 1;
    }
    return parts;
  };
  if (!path.empty()) {
    bool first = true;
    for (auto part : split(path, ';')) {
      auto eq = part.find('=');
      if (part.empty()) return Status::bad_input("PKCS#11 URI: empty path attribute (';;' or a trailing ';')");
      if (eq == std::string_view::npos || eq == 0) {
        return Status::bad_input("PKCS#11 URI: path attribute '" + std::string(part) + "' is not NAME=VALUE");
      }
      std::string name(part.substr(0, eq));
      auto value = QR_TRY(percent_decode(part.substr(eq + 1), true, name));
      if (name == "token") {
        QR_RETURN_IF_ERROR(set_once(u.token, name, value));
      } else if (name == "object") {
        QR_RETURN_IF_ERROR(set_once(u.object, name, value));
      } else if (name == "id") {
        if (value.empty()) return Status::bad_input("PKCS#11 URI: attribute 'id' is empty");
        QR_RETURN_IF_ERROR(set_once(u.id, name, value));
      } else if (name == "manufacturer") {
        QR_RETURN_IF_ERROR(set_once(u.manufacturer, name, value));
      } else if (name == "model") {
        QR_RETURN_IF_ERROR(set_once(u.model, name, value));
      } else if (name == "serial") {
        QR_RETURN_IF_ERROR(set_once(u.serial, name, value));
      } else if (name == "type") {
        if (value != "private" && value != "public") {
          return Status::bad_input("PKCS#11 URI: type='" + value + "': a signing key is type=private (or public)");
        }
        QR_RETURN_IF_ERROR(set_once(u.type, name, value));
      } else if (name == "slot-id") {
        if (u.slot_id) return Status::bad_input("PKCS#11 URI: attribute 'slot-id' given twice");
        if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string::npos) {
          return Status::bad_input("PKCS#11 URI: slot-id='" + value + "' is not a decimal number");
        }
        u.slot_id = std::stoul(value);
      } else {
        return Status::bad_input("PKCS#11 URI: unknown or unsupported path attribute '" + name +
                                 "' (known: token, object, id, type, manufacturer, model, serial, slot-id)");
      }
      redacted += std::string(first ? "" : ";") + std::string(part);
      first = false;
    }
  }
  if (!query.empty()) {
    bool first = true;
    for (auto part : split(query, '&')) {
      auto eq = part.find('=');
      if (part.empty()) return Status::bad_input("PKCS#11 URI: empty query attribute ('&&' or a trailing '&')");
      if (eq == std::string_view::npos || eq == 0) {
        return Status::bad_input("PKCS#11 URI: query attribute '" + std::string(part) + "' is not NAME=VALUE");
      }
      std::string name(part.substr(0, eq));
      auto value = QR_TRY(percent_decode(part.substr(eq + 1), false, name));
      if (name == "module-path") {
        QR_RETURN_IF_ERROR(set_once(u.module_path, seen_path, name, value));
      } else if (name == "module-name") {
        QR_RETURN_IF_ERROR(set_once(u.module_name, seen_name, name, value));
      } else if (name == "pin-value") {
        QR_RETURN_IF_ERROR(set_once(u.pin_value, name, value));
        if (u.pin_value->empty()) return Status::bad_input("PKCS#11 URI: attribute 'pin-value' is empty");
      } else if (name == "pin-source") {
        QR_RETURN_IF_ERROR(set_once(u.pin_source, seen_source, name, value));
      } else {
        return Status::bad_input("PKCS#11 URI: unknown query attribute '" + name +
                                 "' (known: module-path, module-name, pin-value, pin-source)");
      }
      redacted +=
          std::string(first ? "?" : "&") + (name == "pin-value" ? std::string("pin-value=***") : std::string(part));
      first = false;
    }
  }
  if (seen_path && seen_name) return Status::bad_input("PKCS#11 URI: give module-path or module-name, not both");
  if (u.pin_value && seen_source) return Status::bad_input("PKCS#11 URI: give pin-value or pin-source, not both");
  u.redacted = redacted;
  return u;
}

Result<std::unique_ptr<Signer>> open_pkcs11_signer(std::string_view text) {
  auto uri = QR_TRY(parse_pkcs11_uri(text));
  if (uri.type && *uri.type != "private") return Status::bad_input(uri.redacted + ": a signing key is type=private");
  if (!uri.object && !uri.id) return Status::bad_input(uri.redacted + ": name the key with object= (label) or id=");
  auto mod = QR_TRY(load_module(uri));
  CK_RV rv = CKR_OK;
  auto k = open_key(mod, uri, &rv);
  if (!k.ok()) return k.status().with_context(uri.redacted);
  auto signer = std::make_unique<Pkcs11Signer>(uri, mod, std::move(k).value());
  // One signature checked with the public key object: a public object that is not the private key's half
  // would make every attestation unverifiable.
  static constexpr std::string_view kProbe = "quorate: PKCS#11 key check";
  auto sig = signer->sign(kProbe);
  if (!sig.ok()) return sig.status().with_context(uri.redacted);
  if (!signer->public_key().verify(kProbe, sig.value()).ok()) {
    return Status::bad_input(uri.redacted + ": the token's public key object does not match its private key");
  }
  return std::unique_ptr<Signer>(std::move(signer));
}

Result<PublicKey> pkcs11_public_key(std::string_view text) {
  auto uri = QR_TRY(parse_pkcs11_uri(text));
  if (!uri.object && !uri.id) return Status::bad_input(uri.redacted + ": name the key with object= (label) or id=");
  auto mod = QR_TRY(load_module(uri));
  CK_RV rv = CKR_OK;
  auto s = open_session(mod, uri, false, &rv);
  if (!s.ok()) return s.status().with_context(uri.redacted);
  auto pub = find_public_key(s.value(), uri, std::nullopt, &rv);
  if (pub.ok()) return pub;
  // Public objects may be private to the user: log in and look again.
  if (uri.pin_value || !uri.pin_source.empty()) {
    QR_RETURN_IF_ERROR(login(s.value(), uri, true, &rv));
    auto again = find_public_key(s.value(), uri, std::nullopt, &rv);
    if (again.ok()) return again;
    return again.status().with_context(uri.redacted);
  }
  return pub.status().with_context(uri.redacted);
}

Result<PublicKey> pkcs11_generate_key(std::string_view text, KeyType type) {
  auto uri = QR_TRY(parse_pkcs11_uri(text));
  if (!uri.object && !uri.id)
    return Status::bad_input(uri.redacted + ": name the new key with object= (label) and/or id=");
  auto mod = QR_TRY(load_module(uri));
  CK_RV rv = CKR_OK;
  auto opened = open_session(mod, uri, true, &rv);
  if (!opened.ok()) return opened.status().with_context(uri.redacted);
  Session& s = opened.value();
  QR_RETURN_IF_ERROR(login(s, uri, true, &rv));
  if (!uri.pin_value && uri.pin_source.empty()) {
    return Status::bad_input(uri.redacted + ": generating a key needs a PIN (pin-source=file:PATH or pin-value=)");
  }
  for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
    for (const auto& [label, id] :
         {std::pair{uri.object, std::optional<std::string>()}, std::pair{std::optional<std::string>(), uri.id}}) {
      if (!label && !id) continue;
      auto found = QR_TRY(find_objects(s, cls, label, id, &rv));
      if (!found.empty()) {
        return Status::bad_input("token '" + s.token_label + "' already has a key with " +
                                 (label ? "object='" + *label + "'" : std::string("that id")) +
                                 "; a key is never overwritten");
      }
    }
  }
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  auto base = [&](bool priv) {
    std::vector<CK_ATTRIBUTE> t;
    t.push_back({CKA_TOKEN, &yes, sizeof yes});
    if (uri.object) t.push_back({CKA_LABEL, const_cast<char*>(uri.object->data()), uri.object->size()});
    if (uri.id) t.push_back({CKA_ID, const_cast<char*>(uri.id->data()), uri.id->size()});
    if (priv) {
      t.push_back({CKA_PRIVATE, &yes, sizeof yes});
      t.push_back({CKA_SENSITIVE, &yes, sizeof yes});
      t.push_back({CKA_EXTRACTABLE, &no, sizeof no});
      t.push_back({CKA_SIGN, &yes, sizeof yes});
    } else {
      t.push_back({CKA_PRIVATE, &no, sizeof no});
      t.push_back({CKA_VERIFY, &yes, sizeof yes});
    }
    return t;
  };
  std::vector<std::string> param_choices = type == KeyType::kEd25519
                                               ? std::vector<std::string>{kOidEd25519, kNameEd25519}
                                               : std::vector<std::string>{kOidP256};
  CK_MECHANISM mech{type == KeyType::kEd25519 ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
  for (auto& params : param_choices) {
    auto pt = base(false);
    pt.push_back({CKA_EC_PARAMS, params.data(), params.size()});
    auto kt = base(true);
    rv = s.mod->f->C_GenerateKeyPair(s.h, &mech, pt.data(), pt.size(), kt.data(), kt.size(), &pub, &priv);
    if (rv != CKR_ATTRIBUTE_VALUE_INVALID && rv != CKR_DOMAIN_PARAMS_INVALID && rv != CKR_CURVE_NOT_SUPPORTED) break;
  }
  if (rv == CKR_MECHANISM_INVALID) {
    return Status::unsupported("token '" + s.token_label + "' cannot generate " + key_type_name(type) + " keys (" +
                               rv_name(rv) + ")");
  }
  if (rv != CKR_OK) return ck_status("C_GenerateKeyPair on token '" + s.token_label + "'", rv);
  return read_public_object(s, pub, &rv);
}

Result<std::unique_ptr<Signer>> open_signer(const std::string& key_or_uri, const std::string& passphrase) {
  if (is_pkcs11_uri(key_or_uri)) return open_pkcs11_signer(key_or_uri);
  return load_signer(key_or_uri, passphrase);
}

Result<PublicKey> public_key_of(const std::string& key_or_uri, const std::string& passphrase) {
  if (is_pkcs11_uri(key_or_uri)) return pkcs11_public_key(key_or_uri);
  return public_key_in_file(key_or_uri, passphrase);
}

}  // namespace quorate::attest
