//! The panel firmware on a Nucleo-F767ZI: on-board Ethernet (RMII, LAN8742A
//! PHY), DHCP, the hardware RNG, and the panel lines printed over defmt RTT
//! (a display driver would implement [`Panel`] the same way).
#![no_std]
#![no_main]

use defmt::{info, warn};
use embassy_executor::Spawner;
use embassy_net::StackResources;
use embassy_stm32::bind_interrupts;
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA, RNG};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::time::Hertz;
use naslink_core::random::Entropy;
use naslink_firmware_example::app::{self, Panel, Resources};
use naslink_firmware_example::panel::{Line, ROWS};
use static_cell::StaticCell;
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// A locally administered unicast address; change it per board.
const MAC: [u8; 6] = [0x02, 0x4e, 0x41, 0x53, 0x4c, 0x4b];

struct HardwareRng(Rng<'static, RNG>);

impl Entropy for HardwareRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
}

struct Rtt;

impl Panel for Rtt {
    fn show(&mut self, lines: &[Line; ROWS]) {
        for l in lines {
            info!("panel | {=str}", l.as_str());
        }
    }

    fn note(&mut self, text: &str) {
        warn!("{=str}", text);
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    let mut config = embassy_stm32::Config::default();
    // 216 MHz from the ST-LINK's 8 MHz clock (HSE bypass).
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL216,
        divp: Some(PllPDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    let p = embassy_stm32::init(clocks());
    info!("naslink panel (Nucleo-F767ZI)");

    let mut rng = HardwareRng(Rng::new(p.RNG, Irqs));
    let mut seed = [0u8; 8];
    rng.fill_bytes(&mut seed);

    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::<4, 4>::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        MAC,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );
    let config = embassy_net::Config::dhcpv4(Default::default());
    static STACK: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        config,
        STACK.init(StackResources::new()),
        u64::from_le_bytes(seed),
    );
    match net_task(runner) {
        Ok(task) => spawner.spawn(task),
        Err(_) => defmt::panic!("net task spawned twice"),
    }

    static RESOURCES: StaticCell<Resources> = StaticCell::new();
    app::run(stack, rng, RESOURCES.init(Resources::new()), &mut Rtt).await
}
