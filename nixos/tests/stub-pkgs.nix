# A stand-in for the few `pkgs` attributes ../module.nix uses; store paths are fake, the values
# the module generates are kept so that the tests can look at them.
let
  fake = name: { outPath = "/nix/store/00000000000000000000000000000000-${name}"; inherit name; };
in
{
  formats.toml = { }: {
    type = { name = "toml value"; check = builtins.isAttrs; };
    generate = name: value: fake name // { inherit value; };
  };
  writeShellScript = name: text: fake name // { inherit text; };
  runtimeShell = "/bin/sh";
  coreutils = fake "coreutils";
  gnugrep = fake "gnugrep";
  yubihsm-connector = fake "yubihsm-connector";
}
