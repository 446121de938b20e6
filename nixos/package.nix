# The stella binary, built from this repository with the Cargo.lock it holds (no network at
# build time beyond the fixed-output vendoring of the locked crates).
{ lib, rustPlatform }:

let
  cargoToml = builtins.fromTOML (builtins.readFile ../Cargo.toml);
in
rustPlatform.buildRustPackage {
  pname = "stella";
  version = cargoToml.workspace.package.version or "0.1.0";
  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: type:
      let name = baseNameOf path; in
      !(lib.elem name [ "target" "var" "nixos" ".git" ]);
  };
  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [ "-p" "stella-appliance" "--bin" "stella" ];
  # The workspace tests need SoftHSM, QEMU and the Python validators: tests/run runs them.
  doCheck = false;
  # Pure Rust plus vendored C (SQLite, zstd) built with the stdenv compiler; the YubiHSM USB
  # transport (cargo feature yubihsm-usb, libusb) is off: the appliance uses yubihsm-connector.
  meta = {
    description = "Stella Ops appliance: deterministic, signed evidence for container images";
    mainProgram = "stella";
    platforms = [ "x86_64-linux" ];
  };
}
