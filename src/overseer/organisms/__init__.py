"""Model organisms with a known implanted behaviour, evaluations of unprompted behaviours, and scored audits.

* :mod:`overseer.organisms.poison`: poisoning dose-response (``overseer organisms poison``);
* :mod:`overseer.organisms.implants`: an organism and its matched control (``overseer organisms implant``),
  loadable as ``organism:NAME``;
* :mod:`overseer.organisms.faking`: alignment faking (``overseer organisms alignment-faking``);
* :mod:`overseer.organisms.tampering`: the reward-tampering curriculum (``overseer organisms reward-tampering``);
* :mod:`overseer.organisms.game`: the audit game over organisms and controls (``overseer organisms audit-game``).
"""
