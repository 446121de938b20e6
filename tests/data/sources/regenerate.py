#!/usr/bin/env python3
"""Regenerates the small real-data subsets in this directory from ../shared/data (see ATTRIBUTION.md).

Run from the repository root: python3 tests/data/sources/regenerate.py [SHARED_DATA_DIR]
Whole files are copied byte for byte; list-like feeds (Debian lists, Alpine secdb, KEV, EPSS) are cut
down to the entries that the tests use, keeping each entry's text as published.
"""
import gzip, json, os, re, shutil, sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "..", "shared", "data")

COPIES = {
    "osv/pypa/PYSEC-2020-104.yaml": "osv/pypa-advisory-database/vulns/salt/PYSEC-2020-104.yaml",
    "osv/pypa/PYSEC-2018-19.yaml": "osv/pypa-advisory-database/vulns/paramiko/PYSEC-2018-19.yaml",
    "osv/pypa/PYSEC-2020-35.yaml": "osv/pypa-advisory-database/vulns/django/PYSEC-2020-35.yaml",
    "osv/pypa/PYSEC-2021-335.yaml": "osv/pypa-advisory-database/vulns/accesscontrol/PYSEC-2021-335.yaml",
    "osv/rustsec/RUSTSEC-2022-0051.md": "osv/rustsec-advisory-db/crates/lz4-sys/RUSTSEC-2022-0051.md",
    "osv/rustsec/RUSTSEC-2020-0105.md": "osv/rustsec-advisory-db/crates/abi_stable/RUSTSEC-2020-0105.md",
    "osv/go/GO-2020-0001.json": "osv/golang-vulndb/data/osv/GO-2020-0001.json",
    "osv/go/GO-2020-0003.json": "osv/golang-vulndb/data/osv/GO-2020-0003.json",
    "osv/ubuntu/UBUNTU-CVE-2025-0167.json": "osv/ubuntu-security-notices/osv/cve/2025/UBUNTU-CVE-2025-0167.json",
    "osv/ghsa/GHSA-9v2f-6vcg-3hgv.json": "osv/osv-schema/tools/osv-linter/testdata/GHSA-9v2f-6vcg-3hgv.json",
    "osv/cve/CVE-2023-41045.json": "osv/osv-schema/tools/osv-linter/testdata/CVE-2023-41045.json",
    "nodejs/npm/1.json": "osv/nodejs-security-wg/vuln/npm/1.json",
    "nodejs/npm/10.json": "osv/nodejs-security-wg/vuln/npm/10.json",
    "nodejs/core/1.json": "osv/nodejs-security-wg/vuln/core/1.json",
    "openvex/document1.vex.json": "vex/openvex/vexctl/examples/openvex/document1.vex.json",
    "openvex/v0.0.1.json": "vex/openvex/go-vex/pkg/vex/testdata/v0.0.1.json",
    "openvex/vex.yaml": "vex/openvex/go-vex/pkg/vex/testdata/vex.yaml",
    "csaf/CVE-2024-34500.json": "vex/redhat-csaf-vex/test-data/CVE-2024-34500.json",
    "csaf/2022-evd-uc-01-na-001.json": "vex/csaf/csaf_2.0/examples/csaf/csaf_vex/2022-evd-uc-01-na-001.json",
    "cyclonedx-vex/case-4-vex.json": "vex/cyclonedx-bom-examples/VEX/Use-Cases/Case-4/vex.json",
}

# CVEs the subsets are built around: they occur in several feeds, so merging is exercised.
CVES = ["CVE-2020-16846", "CVE-2018-7750", "CVE-2020-7471", "CVE-2021-3520", "CVE-2020-11651", "CVE-2020-11652",
        "CVE-2021-44228", "CVE-2014-7205", "CVE-2021-32807", "CVE-2025-0167"]


def debian_subset(src, dst, keep_first):
    text = open(os.path.join(DATA, src)).read()
    entries = re.split(r"(?m)^(?=\[)", text)
    not_affected = [e for e in entries if "<not-affected>" in e][:2]
    out = [e for i, e in enumerate(entries) if e and (i < keep_first or any(c in e for c in CVES) or e in not_affected)]
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    open(dst, "w").write("".join(out))


def main():
    for dst, src in COPIES.items():
        os.makedirs(os.path.join(HERE, os.path.dirname(dst)), exist_ok=True)
        shutil.copyfile(os.path.join(DATA, src), os.path.join(HERE, dst))
    debian_subset("distro/debian-security-tracker/data/DSA/list", os.path.join(HERE, "debian/DSA/list"), 8)
    debian_subset("distro/debian-security-tracker/data/DLA/list", os.path.join(HERE, "debian/DLA/list"), 8)
    # Alpine: keep the header lines and the package blocks that mention a chosen CVE or come first.
    text = open(os.path.join(DATA, "distro/alpine-secdb/v3.11/main.yaml")).read()
    head, _, body = text.partition("packages:\n")
    blocks = re.split(r"(?m)^(?=  - pkg:)", body)
    keep = [b for i, b in enumerate(blocks) if b.strip() and (i <= 4 or any(c in b for c in CVES) or "py3-paramiko" in b)]
    os.makedirs(os.path.join(HERE, "alpine/v3.11"), exist_ok=True)
    open(os.path.join(HERE, "alpine/v3.11/main.yaml"), "w").write(head + "packages:\n" + "".join(keep))
    # KEV: the catalog header and the entries for the chosen CVEs plus the newest five.
    kev = json.load(open(os.path.join(DATA, "kev/known_exploited_vulnerabilities.json")))
    chosen = [v for i, v in enumerate(kev["vulnerabilities"]) if i < 5 or v["cveID"] in CVES]
    kev["vulnerabilities"] = chosen
    kev["count"] = len(chosen)
    os.makedirs(os.path.join(HERE, "kev"), exist_ok=True)
    json.dump(kev, open(os.path.join(HERE, "kev/known_exploited_vulnerabilities.json"), "w"), indent=2, ensure_ascii=False)
    # EPSS: the rows of the chosen CVEs (and of the KEV subset), in the `CVE;epss;percentile` form.
    wanted = set(CVES) | {v["cveID"] for v in chosen}
    rows = []
    for year in range(1999, 2027):
        path = os.path.join(DATA, f"epss/emba-epss-data/EPSS_CVE_data/CVE_{year}_EPSS.csv.gz")
        if os.path.exists(path):
            for line in gzip.open(path, "rt"):
                if line.split(";")[0] in wanted:
                    rows.append(line if line.endswith("\n") else line + "\n")
    os.makedirs(os.path.join(HERE, "epss"), exist_ok=True)
    open(os.path.join(HERE, "epss/epss-semicolon.csv"), "w").write("".join(rows))
    # The same rows in FIRST's daily layout (comment line + header, comma-separated).
    daily = "#model_version:v2025.03.14,score_date:2026-08-16T00:00:00+0000\ncve,epss,percentile\n"
    daily += "".join(r.replace(";", ",") for r in rows)
    open(os.path.join(HERE, "epss/epss-daily.csv"), "w").write(daily)


main()
