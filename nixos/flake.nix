# The Stella Ops appliance as a NixOS flake:
#   nixosModules.stella            services.stella (./module.nix)
#   nixosConfigurations.appliance  the hardened appliance installed on a disk (./installed.nix)
#   nixosConfigurations.appliance-iso  the same system as a live ISO (./iso.nix)
#   packages.x86_64-linux.stella   the daemon and CLI (./package.nix)
#   packages.x86_64-linux.iso      the bootable live ISO (nix build ./nixos#iso)
# nixpkgs is not reachable from CI: docs/image.md says what was checked without it.
{
  description = "Stella Ops appliance: NixOS module, appliance configuration and ISO";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      stella = pkgs.callPackage ./package.nix { };
      useFlakePackage = { services.stella.package = nixpkgs.lib.mkDefault stella; };
    in
    {
      nixosModules.stella = ./module.nix;
      nixosModules.default = self.nixosModules.stella;

      nixosConfigurations.appliance = nixpkgs.lib.nixosSystem {
        inherit system;
        modules = [ ./installed.nix useFlakePackage ];
      };

      nixosConfigurations.appliance-iso = nixpkgs.lib.nixosSystem {
        inherit system;
        modules = [ ./iso.nix useFlakePackage ];
      };

      packages.${system} = {
        inherit stella;
        iso = self.nixosConfigurations.appliance-iso.config.system.build.isoImage;
        default = self.packages.${system}.iso;
      };
    };
}
