# Secret files in picomon's settings: which keys name one, which of them
# the store would publish, and how each reaches the service as a systemd
# credential. A pure function from the settings to that plan; the module
# turns it into assertions, LoadCredential= and the TOML it writes.
{ lib }:
settings:

let
  # The keys of picomon.toml(5) whose value is a file with a secret in it
  # (src/config/ reads each one at start and on reload), by table: the
  # [emails] table's own, and those of every [notify.NAME] and
  # [checks.NAME] table. CA files are public and not among them.
  keys = {
    emails = [ "smtp_password_file" ];
    notify = [
      "password_file"
      "bearer_token_file"
    ];
    checks = [
      "tls_auth"
      "tls_crypt"
      "token_file"
    ];
  };

  table = v: if builtins.isAttrs v then v else { };
  secretsIn =
    loc: t:
    map (key: {
      loc = loc ++ [ key ];
      file = t.${key};
    }) (builtins.filter (key: t ? ${key}) keys.${builtins.head loc});

  # A path literal (./secret) is copied into the store as soon as the
  # TOML is written; a string can point there too ("${./secret}").
  inStore = v: builtins.isPath v || (lib.isStringLike v && lib.hasPrefix builtins.storeDir (toString v));

  # Every secret file the settings name: where (loc) and which file.
  files =
    secretsIn [ "emails" ] (table (settings.emails or { }))
    ++ lib.concatMap (
      section:
      let
        tables = table (settings.${section} or { });
      in
      lib.concatMap (name: secretsIn [ section name ] (table tables.${name})) (builtins.attrNames tables)
    ) [
      "notify"
      "checks"
    ];

  # Each secret file reaches the service as a systemd credential: systemd
  # reads it as root when the unit starts (a root-only /run/secrets/...
  # works although the service is a DynamicUser) and gives the service
  # its own copy, readable by the service only, under a fixed path that
  # ExecStartPre and ExecStart see. picomon.toml names that copy. A
  # credential's name may hold neither '/' nor ':', so a table name that
  # is not plain letters, digits, '_' and '-' is replaced by "+" and its
  # hash ('+' keeps it apart from plain names).
  credentialsDir = "/run/credentials/picomon.service";
  credentialName = lib.concatMapStringsSep "." (
    part:
    if builtins.match "[A-Za-z0-9_-]{1,64}" part != null then
      part
    else
      "+${builtins.substring 0 16 (builtins.hashString "sha256" part)}"
  );
  # A check switched off (enabled = false) is not validated by picomon,
  # so its missing key file must not keep the service from starting, as
  # a credential whose file is missing would.
  switchedOff =
    s: builtins.head s.loc == "checks" && (settings.checks.${builtins.elemAt s.loc 1}.enabled or true) == false;
  credentials = map (s: s // { name = credentialName s.loc; }) (
    builtins.filter (s: !(switchedOff s)) files
  );
in
{
  inherit inStore;

  # The secret files that everyone could read, each as its option path.
  published = map (s: "services.picomon.settings.${lib.concatStringsSep "." s.loc}") (
    builtins.filter (s: inStore s.file) files
  );

  # LoadCredential= values. toString: the file's own path, never a copy
  # in the store.
  loadCredential = map (c: "${c.name}:${toString c.file}") credentials;

  # What /etc/picomon.toml says: the settings, each secret file replaced
  # by its credential (so no path literal is ever copied to the store).
  settings = builtins.foldl' (
    acc: c: lib.recursiveUpdate acc (lib.setAttrByPath c.loc "${credentialsDir}/${c.name}")
  ) settings credentials;
}
