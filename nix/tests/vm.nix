# A NixOS machine with services.picomon, a local SMTP server (aiosmtpd
# writing a Maildir) and nginx: break nginx, wait for the Problem mail,
# repair it, wait for the OK mail, reload picomon.
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
        virtualHosts.localhost.locations."/".return = "200 'picomon test page'";
      };

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

    # The ping check works under the service's hardening (CAP_NET_RAW only).
    machine.fail("grep -rl 'Problem: ping' /var/lib/smtp/Maildir/new")

    machine.succeed("systemctl reload picomon")
    machine.succeed("systemctl is-active picomon")
  '';
}
