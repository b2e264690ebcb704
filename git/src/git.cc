// libgit2's error text, object ids and repository opening, for every module that reads Git.
#include "quorate/git/git.h"

namespace quorate::git {

std::string last_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

std::string oid_hex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

Status open_repository(const std::string& path, Repository& repo, const std::string& name) {
  if (git_repository_open_ext(&repo.p, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    repo.p = nullptr;
    return Status::not_found("cannot open repository " + (name.empty() ? path : name) + ": " + last_error());
  }
  return Status();
}

}  // namespace quorate::git
