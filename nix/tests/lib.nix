# A small, self-written stand-in for the part of nixpkgs' `lib` that
# nix/module.nix, flake.nix and nix/tests/eval.nix use, the module system
# included. CI has Nix but no nixpkgs (and no network to fetch it), and a
# module is only worth testing where it is *evaluated*: option types,
# priorities, mkIf, read-only options and the "option does not exist" error
# are what broke before, and a parse check sees none of them.
#
# It follows the documented semantics of nixpkgs' module system for what
# it implements (evalModules, mkOption, mkIf/mkMerge/mkOverride, the types
# below, mkPackageOption), and throws where nixpkgs throws, with the same
# wording. It is not a copy: it is smaller, slower and has no docs
# machinery. scripts/nix-check runs nix/tests/eval.nix against it always,
# and against the real nixpkgs lib too when NIXPKGS_LIB points at one, so
# the two cannot disagree unnoticed.
let
  inherit (builtins)
    all
    any
    attrNames
    attrValues
    concatLists
    concatMap
    concatStringsSep
    elem
    elemAt
    filter
    foldl'
    functionArgs
    genList
    head
    isAttrs
    isBool
    isFloat
    isFunction
    isInt
    isList
    isPath
    isString
    length
    listToAttrs
    mapAttrs
    match
    stringLength
    substring
    tail
    typeOf
    ;

  lib = rec {
    inherit
      all
      any
      attrNames
      attrValues
      concatLists
      concatMap
      concatStringsSep
      elem
      filter
      foldl'
      head
      isAttrs
      isList
      isString
      length
      listToAttrs
      mapAttrs
      tail
      ;

    # --- plain helpers ----------------------------------------------------

    id = x: x;
    last = l: elemAt l (length l - 1);
    toList = x: if isList x then x else [ x ];
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: l: if cond then l else [ ];
    optionalAttrs = cond: as: if cond then as else { };
    optionalString = cond: s: if cond then s else "";
    imap1 = f: l: genList (i: f (i + 1) (elemAt l i)) (length l);
    concatMapStringsSep = sep: f: l: concatStringsSep sep (map f l);
    concatImapStringsSep =
      sep: f: l:
      concatStringsSep sep (imap1 f l);
    genAttrs =
      names: f:
      listToAttrs (
        map (n: {
          name = n;
          value = f n;
        }) names
      );
    filterAttrs =
      pred: set:
      listToAttrs (
        concatMap (
          name:
          let
            v = set.${name};
          in
          if pred name v then
            [
              {
                inherit name;
                value = v;
              }
            ]
          else
            [ ]
        ) (attrNames set)
      );
    attrByPath =
      path: default: set:
      if path == [ ] then
        set
      else if isAttrs set && set ? ${head path} then
        attrByPath (tail path) default set.${head path}
      else
        default;
    setAttrByPath =
      path: value: if path == [ ] then value else { ${head path} = setAttrByPath (tail path) value; };
    # Into attribute sets on both sides; anything else on the right wins.
    recursiveUpdate =
      lhs: rhs:
      lhs
      // mapAttrs (
        name: r: if isAttrs r && lhs ? ${name} && isAttrs lhs.${name} then recursiveUpdate lhs.${name} r else r
      ) rhs;
    isStringLike = x: isString x || isPath x || x ? outPath || x ? __toString;
    hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
    hasSuffix =
      suf: s:
      let
        ls = stringLength s;
        lf = stringLength suf;
      in
      lf <= ls && substring (ls - lf) lf s == suf;
    hasInfix = infix: s: match ".*${escapeRegex infix}.*" s != null;
    removeSuffix =
      suf: s: if hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;
    escapeRegex = builtins.replaceStrings (map (c: c) regexSpecials) (map (c: "\\${c}") regexSpecials);
    regexSpecials = [
      "\\"
      "["
      "]"
      "{"
      "}"
      "("
      ")"
      "^"
      "$"
      "?"
      "*"
      "+"
      "|"
      "."
    ];
    escapeShellArg = s: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
    fixedWidthString =
      width: filler: s:
      if stringLength s >= width then s else fixedWidthString width filler (filler + s);
    fixedWidthNumber = width: n: fixedWidthString width "0" (toString n);
    isDerivation = x: isAttrs x && x.type or null == "derivation";
    isStorePath =
      x:
      isString x
      && hasPrefix "${builtins.storeDir}/" x
      && match "[0-9a-df-np-sv-z]{32}-[^/]+" (substring (stringLength builtins.storeDir + 1) (stringLength x) x) != null;
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };

    # --- the module system --------------------------------------------------

    showOption = concatStringsSep ".";
    showValue =
      v:
      if isString v then
        ''"${v}"''
      else if isBool v then
        (if v then "true" else "false")
      else if isInt v || isFloat v then
        toString v
      else
        "<${typeOf v}>";
    showDefs = defs: concatStringsSep "" (map (d: "\n- In `${d.file}': ${showValue d.value}") defs);

    mkOption = attrs: attrs // { _type = "option"; };
    isOption = x: isAttrs x && x._type or null == "option";
    mkEnableOption =
      name:
      mkOption {
        type = types.bool;
        default = false;
        example = true;
        description = "Whether to enable ${name}.";
      };
    mkPackageOption =
      pkgs: name:
      {
        default ? name,
        nullable ? false,
        extraDescription ? "",
        pkgsText ? "pkgs",
        ...
      }:
      let
        path = toList default;
        text = concatStringsSep "." path;
      in
      mkOption (
        optionalAttrs (default != null) {
          default = attrByPath path (throw "${text} cannot be found in ${pkgsText}") pkgs;
          defaultText = literalExpression "${pkgsText}.${text}";
        }
        // optionalAttrs (default == null && nullable) { default = null; }
        // {
          description = "The ${last (toList name)} package to use. ${extraDescription}";
          type = (if nullable then types.nullOr else id) types.package;
        }
      );

    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    mkOverride = priority: content: {
      _type = "override";
      inherit priority content;
    };
    mkOptionDefault = mkOverride 1500;
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;
    defaultPriority = 100;

    propertyOf = v: if isAttrs v then v._type or null else null;

    # mkIf, mkMerge and mkOverride around an attribute set move onto its
    # attributes, without evaluating a condition: which options a module
    # defines must never depend on the configuration it helps to compute.
    pushDownProperties =
      v:
      let
        p = propertyOf v;
      in
      if p == "merge" then
        concatMap pushDownProperties v.contents
      else if p == "if" then
        map (mapAttrs (_: mkIf v.condition)) (pushDownProperties v.content)
      else if p == "override" then
        map (mapAttrs (_: mkOverride v.priority)) (pushDownProperties v.content)
      else
        [ v ];

    # The values a definition stands for once its conditions are known,
    # each with its priority.
    dischargeProperties =
      priority: v:
      let
        p = propertyOf v;
      in
      if p == "merge" then
        concatMap (dischargeProperties priority) v.contents
      else if p == "if" then
        if !isBool v.condition then
          throw "mkIf called with a non-Boolean condition"
        else if v.condition then
          dischargeProperties priority v.content
        else
          [ ]
      else if p == "override" then
        # Not looked into: a default that loses is never evaluated (as in
        # nixpkgs, where mkPackageOption's missing package only throws when
        # nothing else defines the option).
        [
          {
            value = v.content;
            inherit (v) priority;
          }
        ]
      else
        [
          {
            value = v;
            inherit priority;
          }
        ];

    # Definitions of one option (or one attribute or list element of it)
    # merged by its type: only those of the highest priority count.
    mergeDefinitions =
      loc: type: defs:
      let
        discharged = concatMap (
          d: map (x: x // { inherit (d) file; }) (dischargeProperties defaultPriority d.value)
        ) defs;
        best = foldl' (p: d: if d.priority < p then d.priority else p) 10000 discharged;
        kept = filter (d: d.priority == best) discharged;
        checked = map (
          d:
          if type.check d.value then
            { inherit (d) file value; }
          else
            throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${showDefs [ d ]}"
        ) kept;
      in
      {
        isDefined = kept != [ ];
        optionalValue = if kept == [ ] then { } else { value = type.merge loc checked; };
      };

    mergeEqualOption =
      loc: defs:
      foldl' (
        first: d:
        if d.value != first then
          throw "The option `${showOption loc}' has conflicting definition values:${showDefs defs}"
        else
          first
      ) (head defs).value (tail defs);
    mergeUniqueOption =
      {
        message,
        merge ? (_: defs: (head defs).value),
      }:
      loc: defs:
      if length defs == 1 then
        merge loc defs
      else
        throw "The option `${showOption loc}' is defined multiple times while it's expected to be unique.\n${message}\nDefinition values:${showDefs defs}";
    mergeOneOption = mergeUniqueOption { message = ""; };
    mergeDefaultOption =
      loc: defs:
      let
        vs = map (d: d.value) defs;
      in
      if length vs == 1 then
        head vs
      else if all isList vs then
        concatLists vs
      else if all isAttrs vs then
        foldl' (a: b: a // b) { } vs
      else if all isBool vs then
        any id vs
      else if all isString vs then
        concatStringsSep "" vs
      else if all isInt vs && all (x: x == head vs) vs then
        head vs
      else
        throw "Cannot merge definitions of `${showOption loc}'. Definition values:${showDefs defs}";

    types = rec {
      mkOptionType =
        {
          name,
          description ? name,
          check ? (_: true),
          merge ? mergeDefaultOption,
          ...
        }@attrs:
        attrs
        // {
          _type = "option-type";
          inherit
            name
            description
            check
            merge
            ;
        };

      unspecified = mkOptionType { name = "unspecified"; };
      raw = mkOptionType {
        name = "raw";
        merge = mergeOneOption;
      };
      bool = mkOptionType {
        name = "bool";
        check = isBool;
        merge = mergeEqualOption;
      };
      int = mkOptionType {
        name = "int";
        description = "signed integer";
        check = isInt;
        merge = mergeEqualOption;
      };
      float = mkOptionType {
        name = "float";
        description = "floating point number";
        check = isFloat;
        merge = mergeEqualOption;
      };
      str = mkOptionType {
        name = "str";
        description = "string";
        check = isString;
        merge = mergeEqualOption;
      };
      lines = mkOptionType {
        name = "lines";
        description = "strings concatenated with \"\\n\"";
        check = isString;
        merge = _: defs: concatStringsSep "\n" (map (d: d.value) defs);
      };
      path = mkOptionType {
        name = "path";
        check =
          x: (isPath x || isString x || x ? outPath) && substring 0 1 (toString x) == "/";
        merge = mergeEqualOption;
      };
      package = mkOptionType {
        name = "package";
        check = x: isDerivation x || isStorePath x;
        merge = mergeOneOption;
      };
      enum =
        values:
        mkOptionType {
          name = "enum";
          description = "one of ${concatStringsSep ", " (map showValue values)}";
          check = x: elem x values;
          merge = mergeEqualOption;
        };
      anything = mkOptionType {
        name = "anything";
        merge =
          loc: defs:
          let
            kind = v: if isDerivation v then "package" else typeOf v;
            k = kind (head defs).value;
          in
          if !all (d: kind d.value == k) defs then
            throw "The option `${showOption loc}' has conflicting option types"
          else if k == "set" then
            (attrsOf anything).merge loc defs
          else if k == "package" then
            mergeOneOption loc defs
          else
            mergeEqualOption loc defs;
      };
      nullOr =
        t:
        mkOptionType {
          name = "nullOr";
          description = "null or ${t.description}";
          check = x: x == null || t.check x;
          merge =
            loc: defs:
            let
              nulls = filter (d: d.value == null) defs;
            in
            if length nulls == length defs then
              null
            else if nulls != [ ] then
              throw "The option `${showOption loc}' is defined both null and not null"
            else
              t.merge loc defs;
        };
      either =
        t1: t2:
        mkOptionType {
          name = "either";
          description = "${t1.description} or ${t2.description}";
          check = x: t1.check x || t2.check x;
          merge =
            loc: defs:
            if all (d: t1.check d.value) defs then
              t1.merge loc defs
            else if all (d: t2.check d.value) defs then
              t2.merge loc defs
            else
              mergeOneOption loc defs;
        };
      oneOf = ts: foldl' either (head ts) (tail ts);
      listOf =
        elemType:
        mkOptionType {
          name = "listOf";
          description = "list of ${elemType.description}";
          check = isList;
          merge =
            loc: defs:
            map (x: x.value) (
              filter (x: x ? value) (
                concatLists (
                  imap1 (
                    n: d:
                    imap1 (
                      m: v:
                      (mergeDefinitions (loc ++ [ "[definition ${toString n}-entry ${toString m}]" ]) elemType [
                        {
                          inherit (d) file;
                          value = v;
                        }
                      ]).optionalValue
                    ) d.value
                  ) defs
                )
              )
            );
        };
      attrsWith =
        lazy: elemType:
        mkOptionType {
          name = if lazy then "lazyAttrsOf" else "attrsOf";
          description = "attribute set of ${elemType.description}";
          check = isAttrs;
          merge =
            loc: defs:
            let
              pushed = concatMap (
                d:
                map (v: {
                  inherit (d) file;
                  value = v;
                }) (pushDownProperties d.value)
              ) defs;
              names = attrNames (foldl' (acc: d: acc // d.value) { } pushed);
              defsOf =
                name:
                concatMap (
                  d:
                  if d.value ? ${name} then
                    [
                      {
                        inherit (d) file;
                        value = d.value.${name};
                      }
                    ]
                  else
                    [ ]
                ) pushed;
              merged = genAttrs names (name: mergeDefinitions (loc ++ [ name ]) elemType (defsOf name));
            in
            if lazy then
              mapAttrs (
                name: r: r.optionalValue.value or (throw "The option `${showOption (loc ++ [ name ])}' has no value")
              ) merged
            else
              mapAttrs (_: r: r.optionalValue.value) (filterAttrs (_: r: r.optionalValue ? value) merged);
        };
      attrsOf = attrsWith false;
      lazyAttrsOf = attrsWith true;
      unique =
        { message }:
        t:
        t
        // {
          name = "unique";
          merge = mergeUniqueOption {
            inherit message;
            inherit (t) merge;
          };
        };
      addCheck = t: check: t // { check = x: t.check x && check x; };
      submodule =
        modules:
        mkOptionType {
          name = "submodule";
          description = "submodule";
          check = x: isAttrs x || isFunction x || isPath x;
          merge =
            loc: defs:
            (evalModules {
              modules =
                toList modules
                ++ map (d: {
                  _file = d.file;
                  imports = [ d.value ];
                }) defs;
              specialArgs.name = last loc;
              prefix = loc;
            }).config;
        };
      # A NixOS module as a value (specialisation.<name>.configuration).
      deferredModule = mkOptionType {
        name = "deferredModule";
        check = x: isAttrs x || isFunction x || isPath x;
        merge = _: defs: {
          imports = map (d: {
            _file = d.file;
            imports = [ d.value ];
          }) defs;
        };
      };
    };

    # Each module is a file, a function of the module arguments, or an
    # attribute set; `options` and `config` (or everything but `imports`,
    # the shorthand) are collected from all of them, imports followed.
    collectModules =
      args: file: m:
      let
        fromFile = isPath m || isString m;
        file' = if fromFile then toString m else file;
        m1 = if fromFile then import m else m;
        m2 = if isFunction m1 then applyModuleArgs args m1 else m1;
        keywords = [
          "_file"
          "key"
          "imports"
          "options"
          "config"
          "disabledModules"
          "meta"
        ];
        shorthand = !(m2 ? options || m2 ? config);
        extra = removeAttrs m2 keywords;
        norm = {
          file = m2._file or file';
          options = m2.options or { };
          config =
            if shorthand then
              extra
            else if extra != { } then
              throw "Module `${file'}' has an unsupported attribute `${head (attrNames extra)}': put it under `config'."
            else
              m2.config or { };
          imports = m2.imports or [ ];
        };
      in
      [ norm ] ++ concatMap (collectModules args norm.file) norm.imports;

    applyModuleArgs =
      args: f:
      f (
        mapAttrs (
          name: _:
          args.special.${name} or args.config._module.args.${name}
            or (throw "The module argument `${name}' is missing (neither a special argument nor in _module.args).")
        ) (functionArgs f)
      );

    evalModules =
      {
        modules,
        specialArgs ? { },
        prefix ? [ ],
      }:
      let
        internal = {
          _file = "lib.evalModules";
          options._module.args = mkOption {
            type = types.lazyAttrsOf types.raw;
            default = { };
          };
        };
        args = {
          inherit config;
          special = {
            inherit lib config options;
          }
          // specialArgs;
        };
        collected = concatMap (collectModules args "<unknown file>") ([ internal ] ++ modules);

        # All declarations in one tree; an option declared twice is an error.
        options = foldl' (
          acc: m: mergeDeclarations [ ] m.file acc m.options
        ) { } collected;
        mergeDeclarations =
          loc: file: a: b:
          a
          // mapAttrs (
            name: v:
            let
              here = loc ++ [ name ];
            in
            if isOption v then
              if a ? ${name} then
                throw "The option `${showOption here}' in `${file}' is already declared in `${head a.${name}.declarations}'."
              else
                v // { declarations = [ file ]; }
            else if a ? ${name} then
              if isOption a.${name} then
                throw "The option `${showOption here}' in `${file}' is already declared in `${head a.${name}.declarations}'."
              else
                mergeDeclarations here file a.${name} v
            else
              mergeDeclarations here file { } v
          ) b;

        definitions = map (m: {
          inherit (m) file;
          value = m.config;
        }) collected;

        pushAll = concatMap (
          d:
          map (
            v:
            if isAttrs v then
              {
                inherit (d) file;
                value = v;
              }
            else
              throw "A definition in `${d.file}' is not an attribute set where options are expected."
          ) (pushDownProperties d.value)
        );
        defsAt =
          name: pushed:
          concatMap (
            d:
            if d.value ? ${name} then
              [
                {
                  inherit (d) file;
                  value = d.value.${name};
                }
              ]
            else
              [ ]
          ) pushed;

        evalTree =
          loc: opts: defs:
          let
            pushed = pushAll defs;
          in
          mapAttrs (
            name: opt:
            if isOption opt then
              evalOption (loc ++ [ name ]) opt (defsAt name pushed)
            else
              evalTree (loc ++ [ name ]) opt (defsAt name pushed)
          ) opts;

        evalOption =
          loc: opt: defs:
          let
            type = opt.type or types.unspecified;
            withDefault =
              defs
              ++ optional (opt ? default) {
                file = head opt.declarations;
                value = mkOptionDefault opt.default;
              };
            merged = mergeDefinitions loc type withDefault;
            value =
              if opt.readOnly or false && length defs > 1 then
                throw "The option `${showOption loc}' is read-only, but it's set multiple times. Definition values:${showDefs defs}"
              else
                merged.optionalValue.value
                  or (throw "The option `${showOption loc}' was accessed but has no value defined. Try setting the option.");
          in
          if opt ? apply then opt.apply value else value;

        # Every definition must name a declared option.
        undeclared =
          loc: opts: defs:
          let
            pushed = pushAll defs;
            names = attrNames (foldl' (acc: d: acc // d.value) { } pushed);
          in
          concatMap (
            name:
            if !(opts ? ${name}) then
              [
                "The option `${showOption (loc ++ [ name ])}' does not exist. Definition values:${showDefs (defsAt name pushed)}"
              ]
            else if isOption opts.${name} then
              [ ]
            else
              undeclared (loc ++ [ name ]) opts.${name} (defsAt name pushed)
          ) names;

        config = evalTree prefix options definitions;
        errors = undeclared prefix options definitions;
      in
      {
        inherit options;
        config = if errors == [ ] then config else throw (head errors);
      };
  };
in
lib
