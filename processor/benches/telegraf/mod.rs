//! The input both write benches use, so they measure the same lines.

/// Lines in one batch.
pub const LINES: usize = 5_000;

/// 5,000 lines shaped like Telegraf's: cpu, mem, net and the tutorial's `requests` counter.
pub fn telegraf_batch(start_ns: i64) -> String {
    let mut body = String::with_capacity(LINES * 200);
    for i in 0..LINES {
        let host = format!("app-{}", i % 20);
        let ts = start_ns + (i as i64) * 1_000;
        match i % 4 {
            0 => body.push_str(&format!(
                "cpu,cpu=cpu{},host={host} usage_guest=0,usage_idle={}.25,usage_iowait=0.1,usage_irq=0,usage_system=1.2,usage_user=1.1 {ts}\n",
                i % 8,
                90 + i % 9
            )),
            1 => body.push_str(&format!(
                "mem,host={host} active=1234567i,available=7654321i,available_percent=61.2,free=1111111i,used=2222222i,used_percent=38.8 {ts}\n"
            )),
            2 => body.push_str(&format!(
                "net,host={host},interface=eth0 bytes_recv={}i,bytes_sent={}i,packets_recv=12345i,packets_sent=23456i,err_in=0i,err_out=0i {ts}\n",
                i * 1000,
                i * 700
            )),
            _ => body.push_str(&format!(
                "requests,deployment=app,host={host},url=http://10.0.0.{}:8000/metrics counter={}i {ts}\n",
                i % 250,
                i * 3
            )),
        }
    }
    body
}
