//! The fault file system's own model, checked on plain files.

use super::*;

fn write(fs: &FaultFileSystem, path: &Path, data: &[u8], sync: bool) {
    let f = fs.create(path).unwrap();
    f.append(data).unwrap();
    if sync {
        f.sync_data().unwrap();
    }
}

#[test]
fn power_loss_keeps_synced_bytes_and_synced_names_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fs = FaultFileSystem::new();
    write(&fs, &d.join("a.wal"), b"synced", true);
    write(&fs, &d.join("b.sst"), b"unsynced", false);
    fs.sync_dir(d).unwrap();
    let a = fs.open_append(&d.join("a.wal")).unwrap();
    a.append(b" and more").unwrap();
    write(&fs, &d.join("c.sst"), b"synced data, unsynced entry", true);
    fs.remove_file(&d.join("b.sst")).unwrap();
    fs.power_loss().unwrap();
    assert_eq!(std::fs::read(d.join("a.wal")).unwrap(), b"synced");
    assert_eq!(std::fs::read(d.join("b.sst")).unwrap(), b"");
    assert!(!d.join("c.sst").exists());
    // The old handle is dead.
    assert!(a.append(b"x").is_err());
}

#[test]
fn an_unsynced_rename_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fs = FaultFileSystem::new();
    write(&fs, &d.join("CURRENT"), b"old\n", true);
    write(&fs, &d.join("CURRENT.tmp"), b"new\n", true);
    fs.sync_dir(d).unwrap();
    fs.rename(&d.join("CURRENT.tmp"), &d.join("CURRENT"))
        .unwrap();
    assert_eq!(std::fs::read(d.join("CURRENT")).unwrap(), b"new\n");
    fs.power_loss().unwrap();
    assert_eq!(std::fs::read(d.join("CURRENT")).unwrap(), b"old\n");
    assert_eq!(std::fs::read(d.join("CURRENT.tmp")).unwrap(), b"new\n");
    // Once the directory is synced the rename holds.
    fs.rename(&d.join("CURRENT.tmp"), &d.join("CURRENT"))
        .unwrap();
    fs.sync_dir(d).unwrap();
    fs.power_loss().unwrap();
    assert_eq!(std::fs::read(d.join("CURRENT")).unwrap(), b"new\n");
    assert!(!d.join("CURRENT.tmp").exists());
}

#[test]
fn a_failed_sync_loses_its_bytes_even_after_a_later_sync() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fs = FaultFileSystem::new();
    let f = fs.create(&d.join("1.wal")).unwrap();
    fs.sync_dir(d).unwrap();
    f.append(b"aaaa").unwrap();
    f.sync_data().unwrap();
    f.append(b"bbbb").unwrap();
    fs.fail_sync(Target::Table, 1);
    fs.fail_sync(Target::Wal, 1);
    assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
    f.append(b"cccc").unwrap();
    f.sync_data().unwrap();
    fs.power_loss().unwrap();
    assert_eq!(std::fs::read(d.join("1.wal")).unwrap(), b"aaaa\0\0\0\0cccc");
}

#[test]
fn a_full_disk_writes_what_fits_then_works_again() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let path = dir.path().join("1.sst");
    let f = fs.create(&path).unwrap();
    fs.no_space_after(Some(Target::Table), 3);
    let err = f.append(b"hello").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(std::fs::read(&path).unwrap(), b"hel");
    fs.free_space();
    f.append(b"lo").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"hello");
}

#[test]
fn a_crash_tears_the_write_and_stops_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let path = dir.path().join("1.wal");
    let f = fs.create(&path).unwrap();
    assert_eq!(fs.ops(), 1);
    fs.crash_at_op(1);
    assert!(f.append(b"abcdef").is_err());
    assert!(fs.has_crashed());
    assert!(f.sync_data().is_err());
    assert!(fs.list_dir(dir.path()).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    fs.restart();
    assert!(f.append(b"x").is_err(), "handles die with the process");
    fs.open_append(&path).unwrap().append(b"x").unwrap();
}
