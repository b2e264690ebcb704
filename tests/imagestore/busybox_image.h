// Test helper: a tiny builder image made at test time from Debian's busybox-static (/bin/busybox in one
// layer, applet symlinks, Env PATH=/bin), written as an OCI layout. No download.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "quorate/normalize/layer.h"
#include "quorate/normalize/oci.h"

namespace quorate::testing {

// Writes the layout into `dir` (created) with `applets` linked to busybox and, when `with_tmp`, a /tmp
// (minimal images lack one: the sandbox provides its own); when `with_mount_points`, also the directories and
// files a container runtime mounts over (dev, proc, sys, run, etc/hostname, etc/hosts, etc/resolv.conf), as
// distribution images have them, and a history entry. Returns the manifest digest, or "" with a test failure.
inline std::string make_busybox_image(const std::filesystem::path& dir,
                                      const std::vector<std::string>& applets = {"sh", "cat", "echo", "ls", "mkdir",
                                                                                 "test", "true", "head", "id"},
                                      bool with_tmp = false, bool with_mount_points = false) {
  if (!std::filesystem::exists("/bin/busybox")) {
    ADD_FAILURE() << "/bin/busybox is missing: apt-get install busybox-static (scripts/bootstrap.sh)";
    return "";
  }
  std::filesystem::create_directories(dir);
  auto layout = normalize::OciLayoutWriter::open(dir);
  EXPECT_TRUE(layout.ok());
  normalize::LayerOptions options;
  options.source_date_epoch = 1700000000;
  normalize::CanonicalLayerWriter writer(options);
  for (const char* d : {"bin", "tmp"}) {
    if (std::string(d) == "tmp" && !with_tmp) continue;
    normalize::Entry e;
    e.path = d;
    e.type = normalize::EntryType::kDirectory;
    e.mode = std::string(d) == "tmp" ? 01777 : 0755;
    EXPECT_TRUE(writer.add(e).ok());
  }
  if (with_mount_points) {
    for (const char* d : {"dev", "etc", "proc", "run", "sys"}) {
      normalize::Entry e;
      e.path = d;
      e.type = normalize::EntryType::kDirectory;
      e.mode = 0755;
      EXPECT_TRUE(writer.add(e).ok());
    }
    for (const char* f : {"etc/hostname", "etc/hosts", "etc/resolv.conf"}) {
      normalize::Entry e;
      e.path = f;
      e.mode = 0644;
      EXPECT_TRUE(writer.add_bytes(e, "").ok());
    }
  }
  normalize::Entry busybox;
  busybox.path = "bin/busybox";
  busybox.mode = 0755;
  EXPECT_TRUE(writer.add_file(busybox, "/bin/busybox").ok());
  for (const auto& applet : applets) {
    normalize::Entry link;
    link.path = "bin/" + applet;
    link.type = normalize::EntryType::kSymlink;
    link.mode = 0777;
    link.link_target = "busybox";
    EXPECT_TRUE(writer.add(link).ok());
  }
  auto blob = layout->begin_blob();
  EXPECT_TRUE(blob.ok());
  auto summary = writer.write(**blob);
  EXPECT_TRUE(summary.ok()) << summary.status().to_string();
  EXPECT_TRUE((*blob)->finish().ok());
  auto layer = (*blob)->commit(summary->media_type);
  nlohmann::json config = {{"architecture", "amd64"},
                           {"os", "linux"},
                           {"config", {{"Env", {"PATH=/bin"}}}},
                           {"rootfs", {{"type", "layers"}, {"diff_ids", {summary->diff_id}}}}};
  // Like a distribution image, one history entry per layer (buildah refuses to build on layers without one).
  if (with_mount_points) config["history"] = {{{"created", "2023-11-14T22:13:20Z"}, {"created_by", "busybox-static"}}};
  auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
  auto manifest =
      layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, {*layer}).value());
  EXPECT_TRUE(layout->write_index(*manifest, "busybox").ok());
  return manifest->digest;
}

}  // namespace quorate::testing
