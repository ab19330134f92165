"""Pure numpy/scipy implementation of BILD-MACRO; nothing here imports ROS."""
