# A small stand-in for nixpkgs' `lib`, enough to evaluate ../module.nix and ../appliance.nix
# without nixpkgs (which CI cannot fetch). Option types carry a `check` so that defaults and test
# values are type-checked as the real module system would; priorities (mkDefault, mkForce) are
# ignored: each test sets every value at most once.
let
  option = type: attrs: attrs // { _type = "option"; inherit type; };
  mkType = name: check: { inherit name check; };
  types = rec {
    str = mkType "str" builtins.isString;
    bool = mkType "bool" builtins.isBool;
    package = mkType "package" (v: builtins.isAttrs v && v ? outPath);
    path = mkType "path" (v: builtins.isPath v || (builtins.isString v && builtins.substring 0 1 v == "/")
      || (builtins.isAttrs v && v ? outPath));
    port = mkType "port" (v: builtins.isInt v && v >= 0 && v <= 65535);
    ints = {
      u16 = mkType "u16" (v: builtins.isInt v && v >= 0 && v <= 65535);
      between = lo: hi: mkType "int between ${toString lo} and ${toString hi}" (v: builtins.isInt v && v >= lo && v <= hi);
    };
    listOf = t: mkType "list of ${t.name}" (v: builtins.isList v && builtins.all t.check v);
    nullOr = t: mkType "null or ${t.name}" (v: v == null || t.check v);
    enum = values: mkType "one of ${builtins.concatStringsSep ", " values}" (v: builtins.elem v values);
    attrs = mkType "attrs" builtins.isAttrs;
  };
in
rec {
  inherit types;
  mkOption = attrs: option (attrs.type or types.attrs) attrs;
  mkEnableOption = description: option types.bool { default = false; inherit description; };
  # Without the module system's merging, a false mkIf leaves an empty attribute set behind.
  mkIf = condition: value: if condition then value else { };
  mkDefault = value: value;
  mkForce = value: value;
  mkOverride = _priority: value: value;
  literalExpression = text: { _type = "literalExpression"; inherit text; };
  optionalAttrs = condition: attrs: if condition then attrs else { };
  elem = builtins.elem;
  makeBinPath = packages: builtins.concatStringsSep ":" (map (p: "${p}/bin") packages);
  recursiveUpdate = left: right:
    left // builtins.mapAttrs
      (name: value:
        if builtins.isAttrs value && left ? ${name} && builtins.isAttrs left.${name}
        then recursiveUpdate left.${name} value
        else value)
      right;
}
