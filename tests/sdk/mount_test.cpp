// Sandbox::mountBucket / unmountBucket on every transport: over the bridges (sandboxd, TCP or
// the embedded default) against s3rver on loopback, with the errors typed; over the agent
// transport, UnsupportedOperationError. Skipped (with a message) where s3fs, /dev/fuse,
// bubblewrap, node or s3rver are missing (scripts/bootstrap installs them).
#include "sdk/sdk_fixture.hpp"
#include "support/s3_server.hpp"

namespace sandbox::testing::sdk {

TEST_CASE("mountBucket / unmountBucket: a bucket in the sandbox, and typed errors") {
    MountBucketOptions unreachable;
    unreachable.endpoint = "http://127.0.0.1:" + std::to_string(closedPort());
    if (isAgent()) {
        CHECK_THROWS_AS(shared().mountBucket("b", "/mnt/b", unreachable),
                        UnsupportedOperationError);
        CHECK_THROWS_AS(shared().unmountBucket("/mnt/b"), UnsupportedOperationError);
        return;
    }
    // The bridge's own checks come back typed, whatever the machine.
    MountBucketOptions badPrefix = unreachable;
    badPrefix.prefix = "no-slash/";
    CHECK_THROWS_AS(shared().mountBucket("b", "relative/path", unreachable), ValidationFailedError);
    try {
        shared().mountBucket("b", "/mnt/b", badPrefix);
        FAIL("a prefix without '/' was accepted");
    } catch (const BucketMountError& e) {
        CHECK(e.code() == "mount_error");
        CHECK(std::string(e.what()).find("Prefix must start with '/'") != std::string::npos);
    }
    CHECK_THROWS_AS(shared().unmountBucket("/mnt/never"), BucketMountError);

    if (std::string missing = missingForBucketMounts(); !missing.empty()) {
        MESSAGE("skipped the mount itself: " << missing);
        return;
    }
    S3Server s3({"sdkb"});
    Sandbox sb = freshSandbox("mount");
    MountBucketOptions o;
    o.endpoint = s3.url();
    o.credentials = BucketCredentials{"S3RVER", "S3RVER"};
    sb.mountBucket("sdkb", "/mnt/sdk", o);
    auto w = sb.exec(
        "mkdir -p /mnt/sdk/in && echo from-sdk > /mnt/sdk/in/hello.txt && "
        "cat /mnt/sdk/in/hello.txt");
    CHECK(w.exitCode == 0);
    CHECK(w.stdoutText == inSession("from-sdk\n"));
    try {
        sb.mountBucket("sdkb", "/mnt/sdk", o);
        FAIL("a second mount at the same path was accepted");
    } catch (const BucketMountError& e) {
        CHECK(std::string(e.what()).find("already in use") != std::string::npos);
    }
    if (isNarrow()) {
        // Cloudflare's bridge (@cloudflare/sandbox 0.12.7) cleans up after the refused second
        // mount by unmounting the path, which takes the first, working mount down with it.
        CHECK(sb.exec("mountpoint -q /mnt/sdk || echo unmounted").stdoutText ==
              inSession("unmounted\n"));
        sb.destroy();
        return;
    }
    // Read-only, one prefix, elsewhere.
    MountBucketOptions ro = o;
    ro.readOnly = true;
    ro.prefix = "/in/";
    sb.mountBucket("sdkb", "/data/ro", ro);
    CHECK(sb.exec("cat /data/ro/hello.txt").stdoutText == inSession("from-sdk\n"));
    CHECK(sb.exec("echo x > /data/ro/new.txt").exitCode != 0);

    sb.unmountBucket("/mnt/sdk");
    sb.unmountBucket("/data/ro");
    CHECK(sb.exec("test -e /mnt/sdk || test -e /data/ro || echo gone").stdoutText ==
          inSession("gone\n"));
    CHECK_THROWS_AS(sb.unmountBucket("/mnt/sdk"), BucketMountError);
    sb.destroy();
}

}  // namespace sandbox::testing::sdk
