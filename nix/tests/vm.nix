# A NixOS machine with services.picomon, a local SMTP server (aiosmtpd
# writing a Maildir) and nginx: break nginx, wait for the Problem mail,
# repair it, wait for the OK mail in the same thread, then switch to a
# configuration with one more check and see picomon reloaded, not
# restarted. An Alertmanager notifier logs in with a password in a file
# only root can read, as sops-nix or agenix leave one: the service, a
# DynamicUser, gets it as a systemd credential, and nginx, in front of
# the API as in production, lets the alerts through only with it. The node imports nixosModules.default and nothing else: it
# runs with the test framework's read-only nixpkgs.*, as a user's system
# without an overlay would.
{ self }:
{ pkgs, ... }:
{
  name = "picomon";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ self.nixosModules.default ];

      services.nginx = {
        enable = true;
        virtualHosts.localhost.locations = {
          "/".return = "200 'picomon test page'";
          # Basic authentication is nginx's access phase, before the
          # proxy takes the alert (a `return` would answer before it).
          "= /api/v2/alerts".extraConfig = ''
            auth_basic alertmanager;
            auth_basic_user_file ${pkgs.writeText "alertmanager.htpasswd" "picomon:{PLAIN}s3cret\n"};
            proxy_pass http://127.0.0.1/taken;
          '';
          "= /taken".return = "200";
        };
      };

      systemd.tmpfiles.rules = [
        "d /run/secrets 0700 root root -"
        "f /run/secrets/alertmanager 0400 root root - s3cret"
      ];

      systemd.services.smtp = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          StateDirectory = "smtp";
          ExecStart = "${
            pkgs.python3.withPackages (p: [ p.aiosmtpd ])
          }/bin/python3 -m aiosmtpd -n -l 127.0.0.1:2525 -c aiosmtpd.handlers.Mailbox /var/lib/smtp/Maildir";
        };
      };

      services.picomon = {
        enable = true;
        settings = {
          base_tick = 1;
          default_retry = 1;
          emails = {
            to = [ "ops@example.org" ];
            from = "Picomon <picomon@machine.example.org>";
            smtp_host = "127.0.0.1:2525";
            smtp_retry_timeout = 1;
          };
          hosts.local = {
            ipv4 = "127.0.0.1";
            name = "this machine";
          };
          checks.web = {
            type = "http";
            hosts = [ "local" ];
            string = "picomon test page";
          };
          checks.ping = {
            type = "ping";
            hosts = [ "local" ];
          };
          notify.alertmanager = {
            type = "alertmanager";
            urls = [ "http://127.0.0.1" ];
            username = "picomon";
            password_file = "/run/secrets/alertmanager";
            retry_every = 1;
          };
        };
      };

      # The same machine with one more check: switching to it must reload.
      specialisation.more-checks.configuration = {
        services.picomon.settings.checks.load = {
          type = "command";
          command = [
            "check_load"
            "-w"
            "100"
            "-c"
            "200"
          ];
        };
      };
    };

  testScript = ''
    machine.wait_for_unit("nginx.service")
    machine.wait_for_unit("smtp.service")
    machine.wait_for_open_port(2525)
    machine.wait_for_unit("picomon.service")

    machine.succeed("systemctl stop nginx")
    machine.wait_until_succeeds("grep -rl 'Subject: \\[picomon\\] Problem: web' /var/lib/smtp/Maildir/new", timeout=120)

    machine.succeed("systemctl start nginx")
    machine.wait_until_succeeds("grep -rl 'Subject: \\[picomon\\] OK: web' /var/lib/smtp/Maildir/new", timeout=120)

    # The OK mail answers the Problem mail: one thread per outage.
    problem = machine.succeed("grep -rl 'Subject: \\[picomon\\] Problem: web' /var/lib/smtp/Maildir/new").split()[0]
    ok = machine.succeed("grep -rl 'Subject: \\[picomon\\] OK: web' /var/lib/smtp/Maildir/new").split()[0]
    message_id = machine.succeed(f"grep -i '^Message-ID:' {problem} | cut -d' ' -f2-").strip()
    machine.succeed(f"grep -iF 'In-Reply-To: {message_id}' {ok}")

    # The root-only password reached picomon (a credential): nginx took
    # the alerts with it. A wrong or missing one is logged as 401.
    machine.succeed("test \"$(stat -c '%U %a' /run/secrets/alertmanager)\" = 'root 400'")
    machine.wait_until_succeeds("grep -E '^127[.]0[.]0[.]1 - picomon .*\"POST /api/v2/alerts HTTP/1[.]1\" 200 ' /var/log/nginx/access.log", timeout=120)
    machine.fail("grep -E '\"POST /api/v2/alerts HTTP/1[.]1\" 401 ' /var/log/nginx/access.log")

    # The ping check works under the service's hardening (CAP_NET_RAW only).
    machine.fail("grep -rl 'Problem: ping' /var/lib/smtp/Maildir/new")

    # A changed configuration reloads picomon (SIGHUP): the new file is in
    # place, systemd reloaded the unit, and the main process is the same.
    pid = machine.succeed("systemctl show -P MainPID picomon").strip()
    machine.succeed("/run/current-system/specialisation/more-checks/bin/switch-to-configuration test")
    machine.succeed("grep -qF '[checks.load]' /etc/picomon.toml")
    machine.wait_until_succeeds("journalctl -u picomon --grep 'Reloading' --no-pager", timeout=60)
    # The check before the reload passed (without the credentials, which
    # ExecReload cannot see) and picomon took the new configuration.
    machine.wait_until_succeeds("journalctl -u picomon --grep 'configuration reloaded' --no-pager", timeout=60)
    assert machine.succeed("systemctl show -P MainPID picomon").strip() == pid, "picomon was restarted, not reloaded"
    machine.succeed("systemctl is-active picomon")
  '';
}
