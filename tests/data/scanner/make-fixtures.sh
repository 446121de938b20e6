#!/usr/bin/env bash
# Builds the scanner fixtures from real files: this machine's dpkg status
# entries and file lists, Debian packages (gosu: a real Go binary; commons-cli
# and jansi: real jars), a real *.dist-info from PyPI (six) and real
# package.json files from npm (ms, @isaacs/string-locale-compare).
#
# Output (committed, < 5 MB together):
#   fixture-oci/          OCI image layout, multi-platform index (linux/amd64 + linux/arm64)
#   fixture-docker.tar    `docker save` format archive of the linux/amd64 image (written by skopeo)
#   fixture-rpm-oci/      single-layer OCI layout with an rpmdb.sqlite made by the real `rpm`
#                         (--initdb, then two .rpm packages built by `rpmbuild` installed --justdb)
#
# Needs: python3, zstd, dpkg-deb, apt-get, pip, npm, skopeo, rpm (rpmbuild). Network only for
# apt-get download / pip / npm. Deterministic apart from the upstream packages:
# fixed mtimes, owners and ordering; gzip without timestamps.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# Real Debian packages.
apt-get download gosu libcommons-cli-java libjansi-java >/dev/null 2>&1
for deb in *.deb; do dpkg-deb -x "$deb" "pkgroot-${deb%%_*}"; done
dpkg-deb -f gosu_*.deb > gosu.control

# Real Python distribution metadata.
python3 -m pip install --quiet --no-deps --no-compile --target "$WORK/py" six==1.17.0
# Real npm package manifests.
mkdir -p "$WORK/npm" && (cd "$WORK/npm" && npm install --silent --no-audit --no-fund --ignore-scripts ms@2.1.3 @isaacs/string-locale-compare@1.1.0 >/dev/null)

rm -rf "$HERE/fixture-oci" "$HERE/fixture-docker.tar" "$HERE/fixture-rpm-oci"
python3 - "$WORK" "$HERE/fixture-oci" <<'PY'
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, zipfile

work, out = sys.argv[1], sys.argv[2]
MTIME = 1767225600  # 2026-01-01T00:00:00Z
CREATED = "2026-01-01T00:00:00Z"

def dpkg_paragraph(name):
    text = open("/var/lib/dpkg/status", encoding="utf-8").read()
    for para in text.split("\n\n"):
        if para.startswith(f"Package: {name}\n"):
            return para.strip() + "\n"
    raise SystemExit(f"package {name} not installed on this machine")

def gosu_paragraph():
    control = open(os.path.join(work, "gosu.control"), encoding="utf-8").read().strip().split("\n")
    # dpkg adds Status after Package when it installs a package.
    return control[0] + "\nStatus: install ok installed\n" + "\n".join(control[1:]) + "\n"

def deb_list(pkgroot):
    paths = ["/."]
    for root, dirs, files in os.walk(pkgroot):
        dirs.sort()
        rel = os.path.relpath(root, pkgroot)
        if rel != ".":
            paths.append("/" + rel)
        for f in sorted(files):
            paths.append("/" + os.path.normpath(os.path.join(rel, f)))
    return "\n".join(paths) + "\n"

class Layer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
    def _info(self, path, kind, mode):
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.mtime = kind, mode, MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info
    def dir(self, path, mode=0o755):
        self.tar.addfile(self._info(path + "/", tarfile.DIRTYPE, mode))
    def file(self, path, data, mode=0o644):
        if isinstance(data, str):
            data = data.encode()
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
    def symlink(self, path, target):
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)
    def hardlink(self, path, target):
        info = self._info(path, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        self.tar.addfile(info)
    def done(self):
        self.tar.close()
        return self.buf.getvalue()

def read(path):
    return open(path, "rb").read()

# Layer 0 (gzip): base system facts.
base = Layer()
for d in ["etc", "etc/stella", "usr", "usr/lib", "var", "var/lib", "var/lib/dpkg", "var/lib/dpkg/info", "tmp", "tmp/junk"]:
    base.dir(d)
base.file("usr/lib/os-release", read("/usr/lib/os-release"))
base.symlink("etc/os-release", "../usr/lib/os-release")
status0 = "\n".join(dpkg_paragraph(p) for p in ["base-files", "zlib1g", "tzdata"])
base.file("var/lib/dpkg/status", status0)
base.file("var/lib/dpkg/info/base-files.list", read("/var/lib/dpkg/info/base-files.list"))
base.file("var/lib/dpkg/info/zlib1g:amd64.list", read("/var/lib/dpkg/info/zlib1g:amd64.list"))
base.file("etc/stella/old.conf", "replaced by an opaque directory in layer 3\n")
base.file("tmp/junk/cache.bin", "deleted by a whiteout in layer 3\n")
# A duplicate entry: the later one wins.
base.file("etc/motd", "first\n")
base.file("etc/motd", "second (wins)\n")
layer0 = base.done()

# Layer 1 (zstd): Java.
java = Layer()
for d in ["usr/share", "usr/share/java", "opt", "opt/app"]:
    java.dir(d)
cli = read(os.path.join(work, "pkgroot-libcommons-cli-java/usr/share/java/commons-cli.jar"))
java.file("usr/share/java/commons-cli.jar", cli)
java.hardlink("usr/share/java/commons-cli-1.5.0.jar", "usr/share/java/commons-cli.jar")
jansi = read(os.path.join(work, "pkgroot-libjansi-java/usr/share/java/jansi.jar"))
war = io.BytesIO()
with zipfile.ZipFile(war, "w", zipfile.ZIP_DEFLATED) as z:
    def add(name, data):
        z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    add("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: make-fixtures.sh\r\n\r\n")
    add("WEB-INF/web.xml", "<web-app/>\n")
    add("WEB-INF/lib/jansi.jar", jansi)
java.file("opt/app/app.war", war.getvalue())
layer1 = java.done()

# Layer 2 (uncompressed): Python and Node.
lang = Layer()
six_dir = [d for d in os.listdir(os.path.join(work, "py")) if d.startswith("six-") and d.endswith(".dist-info")][0]
for d in ["usr/lib/python3", "usr/lib/python3/dist-packages", f"usr/lib/python3/dist-packages/{six_dir}",
          "usr/lib/node_modules", "usr/lib/node_modules/ms", "usr/lib/node_modules/@isaacs",
          "usr/lib/node_modules/@isaacs/string-locale-compare", "usr/lib/node_modules/broken"]:
    lang.dir(d)
lang.file(f"usr/lib/python3/dist-packages/{six_dir}/METADATA", read(os.path.join(work, "py", six_dir, "METADATA")))
nm = os.path.join(work, "npm", "node_modules")
lang.file("usr/lib/node_modules/ms/package.json", read(os.path.join(nm, "ms/package.json")))
lang.file("usr/lib/node_modules/@isaacs/string-locale-compare/package.json",
          read(os.path.join(nm, "@isaacs/string-locale-compare/package.json")))
# A damaged manifest: must become an "unknown", not stop the scan.
lang.file("usr/lib/node_modules/broken/package.json", '{"name": "broken", "version": ')
layer2 = lang.done()

# Layer 3 (gzip): Go binary, dpkg update, whiteouts.
top = Layer()
for d in ["usr/sbin", "etc/stella", "tmp", "var/lib/dpkg", "var/lib/dpkg/info"]:
    top.dir(d)
top.file("usr/sbin/gosu", read(os.path.join(work, "pkgroot-gosu/usr/sbin/gosu")), 0o755)
status3 = "\n".join([dpkg_paragraph("base-files"), dpkg_paragraph("zlib1g"), gosu_paragraph()])  # tzdata removed
top.file("var/lib/dpkg/status", status3)
top.file("var/lib/dpkg/info/gosu.list", deb_list(os.path.join(work, "pkgroot-gosu")))
top.file("tmp/.wh.junk", "")
top.file("etc/stella/.wh..wh..opq", "")
top.file("etc/stella/new.conf", "from layer 3\n")
layer3 = top.done()

def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()

blobs = {}
def put(data):
    d = sha(data)
    blobs[d] = data
    return d

def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)

def zst(data):
    return subprocess.run(["zstd", "-19", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout

def image(layers, arch):
    descs, diff_ids = [], []
    for raw, comp in layers:
        diff_ids.append(sha(raw))
        if comp == "gzip":
            blob, mt = gz(raw), "application/vnd.oci.image.layer.v1.tar+gzip"
        elif comp == "zstd":
            blob, mt = zst(raw), "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            blob, mt = raw, "application/vnd.oci.image.layer.v1.tar"
        descs.append({"mediaType": mt, "digest": put(blob), "size": len(blob)})
    config = {
        "created": CREATED, "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Entrypoint": ["/usr/sbin/gosu"], "Cmd": ["--version"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": f"make-fixtures.sh layer {i}"} for i in range(len(layers))],
    }
    cfg = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
                "layers": descs}
    m = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(m), "size": len(m),
            "platform": {"architecture": arch, "os": "linux"}}

amd64 = image([(layer0, "gzip"), (layer1, "zstd"), (layer2, "none"), (layer3, "gzip")], "amd64")
arm64 = image([(layer0, "gzip"), (layer2, "none")], "arm64")
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [amd64, arm64]}
idx = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
idx_digest = put(idx)

os.makedirs(os.path.join(out, "blobs", "sha256"))
for d, data in sorted(blobs.items()):
    open(os.path.join(out, "blobs", "sha256", d[7:]), "wb").write(data)
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
top_index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx_digest,
                            "size": len(idx), "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
open(os.path.join(out, "index.json"), "w").write(json.dumps(top_index, sort_keys=True, separators=(",", ":")))
print("amd64 manifest", amd64["digest"])
PY

# The same amd64 image in `docker save` format, written by an independent tool.
# Docker archives cannot carry zstd layers, so the amd64 image is first copied
# with gzip layers (same diff_ids and config, hence the same image id).
skopeo --override-arch amd64 --override-os linux copy --quiet --dest-compress-format gzip --dest-compress \
  "oci:$HERE/fixture-oci:1" "oci:$WORK/gzip-layout:1"
skopeo copy --quiet "oci:$WORK/gzip-layout:1" "docker-archive:$HERE/fixture-docker.tar:stella/fixture:1"
du -sh "$HERE/fixture-oci" "$HERE/fixture-docker.tar"

# An rpm database written by rpm itself: two small packages built with rpmbuild
# (one with an Epoch), installed into a fresh --initdb database with --justdb.
mkdir -p "$WORK/rpmbuild/SPECS" "$WORK/rpmdb"
for spec in "hello 1.0 1 MIT" "greeter 2.5 3 Apache-2.0 7"; do
  set -- $spec
  cat > "$WORK/rpmbuild/SPECS/$1.spec" <<SPEC
Name: stella-fixture-$1
Version: $2
Release: $3
${5:+Epoch: $5}
Summary: Scanner fixture package $1
License: $4
BuildArch: noarch
%description
Scanner test fixture.
%install
mkdir -p %{buildroot}/usr/share/stella-fixture-$1
echo $1 > %{buildroot}/usr/share/stella-fixture-$1/$1.txt
%files
/usr/share/stella-fixture-$1/$1.txt
SPEC
  rpmbuild --quiet -bb --define "_topdir $WORK/rpmbuild" --define "_buildhost fixture" \
    --define "use_source_date_epoch_as_buildtime 1" "$WORK/rpmbuild/SPECS/$1.spec" >/dev/null 2>&1
done
rpm --dbpath "$WORK/rpmdb" --define "_db_backend sqlite" --initdb
rpm --dbpath "$WORK/rpmdb" --define "_db_backend sqlite" -i --justdb --nodeps --noscripts --ignorearch \
  "$WORK"/rpmbuild/RPMS/noarch/*.rpm
sqlite_file="$WORK/rpmdb/rpmdb.sqlite"
python3 - "$sqlite_file" "$HERE/fixture-rpm-oci" <<'PY'
import gzip, hashlib, io, json, os, sqlite3, sys, tarfile, shutil
src, out = sys.argv[1], sys.argv[2]
# Checkpoint any WAL into the main file so the single file is complete.
con = sqlite3.connect(src); con.execute("PRAGMA wal_checkpoint(TRUNCATE)"); con.execute("PRAGMA journal_mode=DELETE"); con.close()
data = open(src, "rb").read()
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for d in ["usr", "usr/lib", "usr/lib/sysimage", "usr/lib/sysimage/rpm"]:
        i = tarfile.TarInfo(d + "/"); i.type = tarfile.DIRTYPE; i.mode = 0o755; i.mtime = 1767225600; tar.addfile(i)
    i = tarfile.TarInfo("usr/lib/sysimage/rpm/rpmdb.sqlite"); i.size = len(data); i.mode = 0o644; i.mtime = 1767225600
    tar.addfile(i, io.BytesIO(data))
layer = buf.getvalue()
blob = gzip.compress(layer, 9, mtime=0)
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                     "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}, sort_keys=True, separators=(",", ":")).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(blob), "size": len(blob)}]},
    sort_keys=True, separators=(",", ":")).encode()
os.makedirs(os.path.join(out, "blobs", "sha256"))
for b in (blob, config, manifest):
    open(os.path.join(out, "blobs", "sha256", sha(b)[7:]), "wb").write(b)
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
open(os.path.join(out, "index.json"), "w").write(json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest)}]},
    sort_keys=True, separators=(",", ":")))
PY
du -sh "$HERE/fixture-rpm-oci"
