# evalModule: ../module.nix evaluated with the stub lib and pkgs for the given services.stella
# values (type-checked; unknown options are errors; defaults resolved lazily, so they may depend
# on other options as in the real module system). Returns the module's `config` plus `_options`
# (the resolved option values). Used by eval-module.nix and test-iso-units.nix.
let
  lib = import ./stub-lib.nix;
  pkgs = import ./stub-pkgs.nix;

  resolve = prefix: options: user:
    let unknown = builtins.filter (name: !(options ? ${name})) (builtins.attrNames user);
    in
    if unknown != [ ] then throw "unknown option ${prefix}.${builtins.head unknown}"
    else builtins.mapAttrs
      (name: option:
        if (option._type or null) == "option" then
          let value = if user ? ${name} then user.${name} else option.default or (throw "${prefix}.${name}: no value and no default");
          in if option.type.check value then value else throw "${prefix}.${name}: value is not a ${option.type.name}"
        else resolve "${prefix}.${name}" option (user.${name} or { }))
      options;
in
{
  evalModule = user:
    let
      module = import ../module.nix { inherit config lib pkgs; };
      config = { services.stella = resolve "services.stella" module.options.services.stella user; };
    in
    module.config // { _options = config.services.stella; };
}
