//! An OpenVPN static key file (`openvpn --genkey secret`), read where
//! both need it: the configuration checks a `tls_auth`/`tls_crypt` file
//! at load, and `picomon plugin openvpn` signs its packets with it. It
//! lives beside the probe that names it, below both.

use std::path::Path;

/// An OpenVPN static key (`openvpn --genkey secret`): two directions of a
/// 64-byte cipher key and a 64-byte HMAC key each.
pub(crate) struct StaticKey([u8; 256]);

impl StaticKey {
    #[cfg(test)]
    pub(crate) fn from_bytes(key: [u8; 256]) -> StaticKey {
        StaticKey(key)
    }

    pub(crate) fn cipher(&self, direction: usize) -> &[u8] {
        &self.0[direction * 128..direction * 128 + 64]
    }
    pub(crate) fn hmac(&self, direction: usize) -> &[u8] {
        &self.0[direction * 128 + 64..direction * 128 + 128]
    }
}

/// Reads an `OpenVPN Static key V1` file; the error says what is wrong
/// with it (the caller names the key and the file).
pub(crate) fn read_static_key(path: &Path) -> Result<StaticKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let begin = "-----BEGIN OpenVPN Static key V1-----";
    let end = "-----END OpenVPN Static key V1-----";
    let body = text
        .split_once(begin)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(body, _)| body)
        .ok_or_else(|| format!("not an OpenVPN static key: no {begin:?} … {end:?} block"))?;
    let hex: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if hex.len() != 512 {
        return Err(format!(
            "an OpenVPN static key has 256 bytes, this one {}",
            hex.len() / 2
        ));
    }
    let mut key = [0u8; 256];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "not an OpenVPN static key: the key is not hexadecimal".to_string())?;
    }
    Ok(StaticKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_key_file_is_read_and_a_broken_one_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ta.key");
        let hex: String = (0..256).map(|i| format!("{:02x}", i as u8)).collect();
        let lines: Vec<&str> = (0..16).map(|i| &hex[i * 32..i * 32 + 32]).collect();
        std::fs::write(
            &path,
            format!(
                "#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n{}\n-----END OpenVPN Static key V1-----\n",
                lines.join("\n")
            ),
        )
        .expect("write");
        let k = read_static_key(&path).expect("key");
        assert_eq!(k.hmac(1)[0], 192);
        std::fs::write(&path, "hello").expect("write");
        let e = read_static_key(&path).err().expect("broken key");
        assert!(e.contains("not an OpenVPN static key"), "{e}");
    }
}
