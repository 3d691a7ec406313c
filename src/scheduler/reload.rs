//! SIGHUP: every layer is loaded again in a thread of its own (reading
//! files can block), a load that takes too long is refused, and a valid
//! configuration replaces the running one, instances keeping their state.

use super::*;

impl Daemon {
    /// Loads every layer again in a thread of its own: reading files can
    /// block (a hung filesystem), and the loop must go on ticking.
    pub(super) fn start_reload(&mut self) {
        self.reloads += 1;
        let generation = self.reloads;
        self.reloading = Some((generation, Instant::now() + RELOAD_LIMIT));
        let main_file = self.main_file.clone();
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let config = Box::new(Config::load_for_daemon(&main_file));
                let _ = tx.send(Msg::Loaded { generation, config });
            });
        if let Err(e) = spawned {
            self.reloading = None;
            log::error!("reload refused, still running the previous configuration: cannot start a thread to load it: {e}");
        }
    }

    pub(super) fn check_reload_deadline(&mut self, now: Instant) {
        if let Some((_, deadline)) = self.reloading {
            if now >= deadline {
                self.reloading = None;
                log::error!(
                    "reload refused, still running the previous configuration: loading it took longer than {} (a file on a hung filesystem?)",
                    crate::human::human_duration(RELOAD_LIMIT)
                );
            }
        }
    }

    /// Switches to a newly loaded configuration; keeps the old one if the
    /// new one is invalid. New instances run at the next tick.
    pub(super) fn reload(&mut self, loaded: Result<Config, ConfigError>) {
        let config = match loaded {
            Ok(config) => config,
            Err(e) => {
                log::error!("reload refused, still running the previous configuration: {e}");
                return;
            }
        };
        if config.max_parallel != self.config.max_parallel {
            if let Err(e) = self.pool.set_parallel(config.max_parallel) {
                log::error!("reload refused: cannot start plugin workers: {e}");
                return;
            }
        }
        if config.state_dir != self.config.state_dir {
            log::warn!(
                "state_dir changed: picomon keeps using the previous one until it is restarted"
            );
        }
        crate::logging::set_log_level(config.log_level);
        self.post.reconfigure(&config.emails, &config.notifiers);
        if config.emails.report_every != self.config.emails.report_every {
            self.next_report = config
                .emails
                .report_every
                .map(|every| Instant::now() + every);
        }
        self.silences
            .set_windows(config.maintenance.clone(), config.time_zone.clone());
        if config.push_listen != self.config.push_listen {
            log::warn!(
                "[push] listen changed: picomon keeps taking pushes where it did until it is restarted"
            );
        }
        let before = std::mem::replace(&mut self.config, Arc::new(config));
        self.reconfigure_switch();
        self.install_instances(Some(&before));
        drop(before);
        self.save_state();
        // The previous configuration and the loading thread's garbage.
        crate::sys::trim_allocator();
        log::info!("configuration reloaded: {}", self.config.summary());
    }
}
