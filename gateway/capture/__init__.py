"""Scanner capture: evdev keyboard wedges (exclusive grab), serial/CDC and HID POS scanners,
read below the keyboard layer, hot-plugged, many at once, each scan decoded and identified."""
