{
  "patcher": {
    "fileversion": 1,
    "appversion": {
      "major": 8,
      "minor": 6,
      "revision": 0,
      "architecture": "x64",
      "modernui": 1
    },
    "classnamespace": "box",
    "rect": [80.0, 80.0, 1020.0, 660.0],
    "openrect": [0.0, 0.0, 760.0, 169.0],
    "openinpresentation": 1,
    "devicewidth": 760.0,
    "default_fontsize": 10.0,
    "default_fontname": "Arial Bold",
    "gridsize": [8.0, 8.0],
    "description": "TAD Drums: new drum one-shots and variations from a running tad-daemon.",
    "boxes": [
      {
        "box": {
          "id": "thisdevice",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 3,
          "outlettype": ["bang", "int", "int"],
          "patching_rect": [20.0, 20.0, 90.0, 22.0],
          "text": "live.thisdevice"
        }
      },
      {
        "box": {
          "id": "msg-init",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [20.0, 50.0, 35.0, 22.0],
          "text": "init"
        }
      },
      {
        "box": {
          "id": "js",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 10,
          "outlettype": ["", "", "", "", "", "", "", "", "", ""],
          "patching_rect": [20.0, 420.0, 560.0, 22.0],
          "text": "js tad_drums.js ---tad",
          "saved_object_attributes": {
            "filename": "tad_drums.js",
            "parameter_enable": 0
          }
        }
      },
      {
        "box": {
          "id": "udpsend",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [20.0, 520.0, 140.0, 22.0],
          "text": "udpsend 127.0.0.1 9310"
        }
      },
      {
        "box": {
          "id": "udpreceive",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [600.0, 380.0, 100.0, 22.0],
          "text": "udpreceive 9311"
        }
      },
      {
        "box": {
          "id": "models",
          "maxclass": "umenu",
          "numinlets": 1,
          "numoutlets": 3,
          "outlettype": ["int", "", ""],
          "patching_rect": [20.0, 100.0, 100.0, 22.0],
          "presentation": 1,
          "presentation_rect": [4.0, 6.0, 96.0, 20.0],
          "parameter_enable": 0,
          "items": [],
          "annotation": "Model to generate with, listed by the daemon."
        }
      },
      {
        "box": {
          "id": "p-model",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [20.0, 130.0, 120.0, 22.0],
          "text": "prepend modelindex"
        }
      },
      {
        "box": {
          "id": "new",
          "maxclass": "live.text",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [150.0, 100.0, 96.0, 20.0],
          "presentation": 1,
          "presentation_rect": [104.0, 6.0, 96.0, 20.0],
          "mode": 0,
          "text": "new",
          "texton": "new",
          "annotation": "Generate new one-shots with the chosen model.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "New",
              "parameter_shortname": "New",
              "parameter_type": 2,
              "parameter_enum": ["val1", "val2"],
              "parameter_mmax": 1,
              "parameter_invisible": 2
            }
          },
          "varname": "New",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "msg-generate",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [150.0, 130.0, 65.0, 22.0],
          "text": "generate"
        }
      },
      {
        "box": {
          "id": "count",
          "maxclass": "live.numbox",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [260.0, 100.0, 44.0, 15.0],
          "presentation": 1,
          "presentation_rect": [204.0, 8.0, 40.0, 15.0],
          "annotation": "How many one-shots per press.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Count",
              "parameter_shortname": "Count",
              "parameter_type": 1,
              "parameter_mmin": 1.0,
              "parameter_mmax": 16.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [1],
              "parameter_unitstyle": 0
            }
          },
          "varname": "Count",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-count",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [260.0, 130.0, 90.0, 22.0],
          "text": "prepend count"
        }
      },
      {
        "box": {
          "id": "l-count",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [260.0, 80.0, 40.0, 18.0],
          "presentation": 1,
          "presentation_rect": [204.0, 24.0, 40.0, 18.0],
          "text": "count"
        }
      },
      {
        "box": {
          "id": "strength",
          "maxclass": "live.dial",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [360.0, 80.0, 44.0, 48.0],
          "presentation": 1,
          "presentation_rect": [250.0, 2.0, 44.0, 48.0],
          "annotation": "Variation strength: 0 keeps the dropped sample, 1 ignores it.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Strength",
              "parameter_shortname": "Strength",
              "parameter_type": 0,
              "parameter_mmin": 0.0,
              "parameter_mmax": 1.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [0.5],
              "parameter_unitstyle": 1
            }
          },
          "varname": "Strength",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-strength",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [360.0, 130.0, 100.0, 22.0],
          "text": "prepend strength"
        }
      },
      {
        "box": {
          "id": "tosimpler",
          "maxclass": "live.toggle",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [480.0, 100.0, 15.0, 15.0],
          "presentation": 1,
          "presentation_rect": [300.0, 8.0, 15.0, 15.0],
          "annotation": "Live 12.4+: also load results into the Simpler of the last selected track or Drum Rack pad.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "To Simpler",
              "parameter_shortname": "Simpler",
              "parameter_type": 2,
              "parameter_enum": ["off", "on"],
              "parameter_mmax": 1,
              "parameter_initial_enable": 1,
              "parameter_initial": [1]
            }
          },
          "varname": "To Simpler",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-tosimpler",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [480.0, 130.0, 110.0, 22.0],
          "text": "prepend tosimpler"
        }
      },
      {
        "box": {
          "id": "l-tosimpler",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [500.0, 98.0, 70.0, 18.0],
          "presentation": 1,
          "presentation_rect": [316.0, 6.0, 70.0, 18.0],
          "text": "to Simpler"
        }
      },
      {
        "box": {
          "id": "drop",
          "maxclass": "live.drop",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [20.0, 180.0, 150.0, 48.0],
          "presentation": 1,
          "presentation_rect": [4.0, 30.0, 150.0, 48.0],
          "legend": "drop a sample to vary it",
          "decodemode": 1,
          "annotation": "Drop a sample from Live's browser or an audio clip's file: it is varied with the chosen model.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Vary source",
              "parameter_shortname": "Source",
              "parameter_type": 4,
              "parameter_invisible": 1
            }
          },
          "varname": "Vary source",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "path-drop",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "int"],
          "patching_rect": [20.0, 235.0, 140.0, 22.0],
          "text": "conformpath slash boot"
        }
      },
      {
        "box": {
          "id": "p-drop",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [20.0, 262.0, 85.0, 22.0],
          "text": "prepend drop"
        }
      },
      {
        "box": {
          "id": "again",
          "maxclass": "live.text",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [180.0, 180.0, 80.0, 16.0],
          "presentation": 1,
          "presentation_rect": [4.0, 82.0, 150.0, 16.0],
          "mode": 0,
          "text": "vary again",
          "texton": "vary again",
          "annotation": "Vary the last dropped sample again.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Vary again",
              "parameter_shortname": "Again",
              "parameter_type": 2,
              "parameter_enum": ["val1", "val2"],
              "parameter_mmax": 1,
              "parameter_invisible": 2
            }
          },
          "varname": "Vary again",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "msg-vary",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [180.0, 205.0, 40.0, 22.0],
          "text": "vary"
        }
      },
      {
        "box": {
          "id": "l-folder",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [280.0, 160.0, 140.0, 18.0],
          "presentation": 1,
          "presentation_rect": [164.0, 66.0, 124.0, 18.0],
          "text": "drop a folder: fine-tune",
          "ignoreclick": 1
        }
      },
      {
        "box": {
          "id": "folder",
          "maxclass": "dropfile",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [280.0, 180.0, 130.0, 42.0],
          "presentation": 1,
          "presentation_rect": [160.0, 56.0, 130.0, 42.0],
          "types": [],
          "annotation": "Drop a folder of one-shots: queue a fine-tune of the chosen model on it."
        }
      },
      {
        "box": {
          "id": "path-folder",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "int"],
          "patching_rect": [280.0, 235.0, 140.0, 22.0],
          "text": "conformpath slash boot"
        }
      },
      {
        "box": {
          "id": "p-folder",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [280.0, 262.0, 95.0, 22.0],
          "text": "prepend folder"
        }
      },
      {
        "box": {
          "id": "now",
          "maxclass": "live.toggle",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [430.0, 180.0, 15.0, 15.0],
          "presentation": 1,
          "presentation_rect": [160.0, 82.0, 15.0, 15.0],
          "annotation": "Start the fine-tune now instead of in the daemon's night window.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Train now",
              "parameter_shortname": "Now",
              "parameter_type": 2,
              "parameter_enum": ["off", "on"],
              "parameter_mmax": 1,
              "parameter_initial_enable": 1,
              "parameter_initial": [0]
            }
          },
          "varname": "Train now",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "l-now",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [450.0, 178.0, 70.0, 18.0],
          "presentation": 1,
          "presentation_rect": [176.0, 80.0, 70.0, 18.0],
          "text": "start now"
        }
      },
      {
        "box": {
          "id": "p-now",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [430.0, 205.0, 105.0, 22.0],
          "text": "prepend trainnow"
        }
      },
      {
        "box": {
          "id": "history",
          "maxclass": "umenu",
          "numinlets": 1,
          "numoutlets": 3,
          "outlettype": ["int", "", ""],
          "patching_rect": [560.0, 180.0, 130.0, 22.0],
          "presentation": 1,
          "presentation_rect": [160.0, 30.0, 130.0, 20.0],
          "parameter_enable": 0,
          "items": [],
          "annotation": "Recent results: pick one to load it again."
        }
      },
      {
        "box": {
          "id": "p-history",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [560.0, 210.0, 125.0, 22.0],
          "text": "prepend historyindex"
        }
      },
      {
        "box": {
          "id": "daemonport",
          "maxclass": "live.numbox",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [20.0, 300.0, 50.0, 15.0],
          "presentation": 1,
          "presentation_rect": [300.0, 56.0, 50.0, 15.0],
          "annotation": "UDP port the daemon listens on (tad-daemon serve --port).",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Daemon port",
              "parameter_shortname": "Daemon",
              "parameter_type": 0,
              "parameter_mmin": 1024.0,
              "parameter_mmax": 65535.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [9310.0],
              "parameter_unitstyle": 0
            }
          },
          "varname": "Daemon port",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "l-daemonport",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [20.0, 280.0, 50.0, 18.0],
          "presentation": 1,
          "presentation_rect": [300.0, 40.0, 50.0, 18.0],
          "text": "daemon"
        }
      },
      {
        "box": {
          "id": "p-daemonport",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [20.0, 330.0, 120.0, 22.0],
          "text": "prepend daemonport"
        }
      },
      {
        "box": {
          "id": "replyport",
          "maxclass": "live.numbox",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [160.0, 300.0, 50.0, 15.0],
          "presentation": 1,
          "presentation_rect": [356.0, 56.0, 50.0, 15.0],
          "annotation": "UDP port this device listens on for the daemon's replies.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Reply port",
              "parameter_shortname": "Reply",
              "parameter_type": 0,
              "parameter_mmin": 1024.0,
              "parameter_mmax": 65535.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [9311.0],
              "parameter_unitstyle": 0
            }
          },
          "varname": "Reply port",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "l-replyport",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [160.0, 280.0, 50.0, 18.0],
          "presentation": 1,
          "presentation_rect": [356.0, 40.0, 50.0, 18.0],
          "text": "reply"
        }
      },
      {
        "box": {
          "id": "p-replyport",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [160.0, 330.0, 115.0, 22.0],
          "text": "prepend replyport"
        }
      },
      {
        "box": {
          "id": "status",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [20.0, 560.0, 430.0, 18.0],
          "presentation": 1,
          "presentation_rect": [4.0, 104.0, 430.0, 18.0],
          "text": "looking for the daemon..."
        }
      },
      {
        "box": {
          "id": "progress",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [20.0, 580.0, 430.0, 18.0],
          "presentation": 1,
          "presentation_rect": [4.0, 122.0, 430.0, 18.0],
          "text": ""
        }
      },
      {
        "box": {
          "id": "target",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [20.0, 600.0, 430.0, 18.0],
          "presentation": 1,
          "presentation_rect": [4.0, 140.0, 430.0, 18.0],
          "text": ""
        }
      },
      {
        "box": {
          "id": "buffer",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["float", "bang"],
          "patching_rect": [200.0, 480.0, 110.0, 22.0],
          "text": "buffer~ ---tadbuf"
        }
      },
      {
        "box": {
          "id": "notein",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 3,
          "outlettype": ["int", "int", "int"],
          "patching_rect": [760.0, 20.0, 50.0, 22.0],
          "text": "notein"
        }
      },
      {
        "box": {
          "id": "stripnote",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [760.0, 50.0, 65.0, 22.0],
          "text": "stripnote"
        }
      },
      {
        "box": {
          "id": "trig",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["bang", "float"],
          "patching_rect": [760.0, 80.0, 40.0, 22.0],
          "text": "t b f"
        }
      },
      {
        "box": {
          "id": "velocity",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": ["float"],
          "patching_rect": [800.0, 110.0, 45.0, 22.0],
          "text": "/ 127."
        }
      },
      {
        "box": {
          "id": "msg-restart",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [760.0, 110.0, 30.0, 22.0],
          "text": "0"
        }
      },
      {
        "box": {
          "id": "rate",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": ["signal"],
          "patching_rect": [720.0, 140.0, 50.0, 22.0],
          "text": "sig~ 1."
        }
      },
      {
        "box": {
          "id": "groove",
          "maxclass": "newobj",
          "numinlets": 3,
          "numoutlets": 3,
          "outlettype": ["signal", "signal", "signal"],
          "patching_rect": [720.0, 170.0, 120.0, 22.0],
          "text": "groove~ ---tadbuf 2"
        }
      },
      {
        "box": {
          "id": "gain-l",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": ["signal"],
          "patching_rect": [720.0, 210.0, 40.0, 22.0],
          "text": "*~ 0."
        }
      },
      {
        "box": {
          "id": "gain-r",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": ["signal"],
          "patching_rect": [780.0, 210.0, 40.0, 22.0],
          "text": "*~ 0."
        }
      },
      {
        "box": {
          "id": "plugout",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 2,
          "outlettype": ["signal", "signal"],
          "patching_rect": [720.0, 250.0, 60.0, 22.0],
          "text": "plugout~"
        }
      },
      {
        "box": {
          "id": "c-sampler",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [720.0, 280.0, 260.0, 33.0],
          "text": "internal sampler: any MIDI note plays the newest result (velocity = level)",
          "linecount": 2
        }
      },
      {
        "box": {
          "id": "more",
          "maxclass": "live.text",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [20.0, 660.0, 96.0, 20.0],
          "presentation": 1,
          "presentation_rect": [440.0, 6.0, 96.0, 20.0],
          "mode": 0,
          "text": "more like this",
          "texton": "more like this",
          "annotation": "Close relatives of the newest new sound (its seed), as far as the amount dial says.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "More like this",
              "parameter_shortname": "More like ",
              "parameter_type": 2,
              "parameter_enum": ["val1", "val2"],
              "parameter_mmax": 1,
              "parameter_invisible": 2
            }
          },
          "varname": "More like this",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "msg-more",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [20.0, 685.0, 60.0, 22.0],
          "text": "more"
        }
      },
      {
        "box": {
          "id": "amount",
          "maxclass": "live.dial",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [130.0, 640.0, 44.0, 48.0],
          "presentation": 1,
          "presentation_rect": [540.0, 2.0, 44.0, 48.0],
          "annotation": "How far 'more like this' goes: 0 the same sound, 0.1 close relatives, 1 another sound.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Amount",
              "parameter_shortname": "Amount",
              "parameter_type": 0,
              "parameter_mmin": 0.0,
              "parameter_mmax": 1.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [0.15],
              "parameter_unitstyle": 1
            }
          },
          "varname": "Amount",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-amount",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [130.0, 695.0, 110.0, 22.0],
          "text": "prepend amount"
        }
      },
      {
        "box": {
          "id": "kit",
          "maxclass": "live.text",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [20.0, 760.0, 96.0, 20.0],
          "presentation": 1,
          "presentation_rect": [440.0, 30.0, 96.0, 20.0],
          "mode": 0,
          "text": "new kit",
          "texton": "new kit",
          "annotation": "A kick, snare, hat and perc that belong together, loudness matched: onto the Drum Rack's first pads (Live 12.4), else here and in the results list.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "New kit",
              "parameter_shortname": "New kit",
              "parameter_type": 2,
              "parameter_enum": ["val1", "val2"],
              "parameter_mmax": 1,
              "parameter_invisible": 2
            }
          },
          "varname": "New kit",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "msg-kit",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [20.0, 785.0, 60.0, 22.0],
          "text": "kit"
        }
      },
      {
        "box": {
          "id": "newtail",
          "maxclass": "live.text",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [260.0, 660.0, 96.0, 20.0],
          "presentation": 1,
          "presentation_rect": [440.0, 56.0, 96.0, 16.0],
          "mode": 0,
          "text": "new tail",
          "texton": "new tail",
          "annotation": "Keep the newest result's attack (its first 50 ms) and let the chosen model remake its body and tail.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "New tail",
              "parameter_shortname": "New tail",
              "parameter_type": 2,
              "parameter_enum": ["val1", "val2"],
              "parameter_mmax": 1,
              "parameter_invisible": 2
            }
          },
          "varname": "New tail",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "msg-newtail",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [260.0, 685.0, 60.0, 22.0],
          "text": "newtail"
        }
      },
      {
        "box": {
          "id": "dropa",
          "maxclass": "live.drop",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [20.0, 860.0, 60.0, 40.0],
          "presentation": 1,
          "presentation_rect": [440.0, 100.0, 60.0, 40.0],
          "legend": "morph A",
          "decodemode": 1,
          "annotation": "Drop the first sound to morph from.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Morph A",
              "parameter_shortname": "Morph A",
              "parameter_type": 4,
              "parameter_invisible": 1
            }
          },
          "varname": "Morph A",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "path-dropa",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "int"],
          "patching_rect": [20.0, 915.0, 140.0, 22.0],
          "text": "conformpath slash boot"
        }
      },
      {
        "box": {
          "id": "p-dropa",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [20.0, 942.0, 85.0, 22.0],
          "text": "prepend dropa"
        }
      },
      {
        "box": {
          "id": "dropb",
          "maxclass": "live.drop",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [200.0, 860.0, 60.0, 40.0],
          "presentation": 1,
          "presentation_rect": [504.0, 100.0, 60.0, 40.0],
          "legend": "morph B",
          "decodemode": 1,
          "annotation": "Drop the second sound to morph to: the morph starts when both are there.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Morph B",
              "parameter_shortname": "Morph B",
              "parameter_type": 4,
              "parameter_invisible": 1
            }
          },
          "varname": "Morph B",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "path-dropb",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "int"],
          "patching_rect": [200.0, 915.0, 140.0, 22.0],
          "text": "conformpath slash boot"
        }
      },
      {
        "box": {
          "id": "p-dropb",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [200.0, 942.0, 85.0, 22.0],
          "text": "prepend dropb"
        }
      },
      {
        "box": {
          "id": "position",
          "maxclass": "live.dial",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [380.0, 840.0, 44.0, 48.0],
          "presentation": 1,
          "presentation_rect": [570.0, 96.0, 44.0, 48.0],
          "annotation": "Where between A (0) and B (1) the morph lands; 'morph' makes it.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Position",
              "parameter_shortname": "Position",
              "parameter_type": 0,
              "parameter_mmin": 0.0,
              "parameter_mmax": 1.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [0.5],
              "parameter_unitstyle": 1
            }
          },
          "varname": "Position",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-position",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [380.0, 895.0, 110.0, 22.0],
          "text": "prepend position"
        }
      },
      {
        "box": {
          "id": "morph",
          "maxclass": "live.text",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [480.0, 860.0, 96.0, 20.0],
          "presentation": 1,
          "presentation_rect": [440.0, 146.0, 124.0, 16.0],
          "mode": 0,
          "text": "morph",
          "texton": "morph",
          "annotation": "Make the sound at the position dial between the two dropped sounds.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Morph",
              "parameter_shortname": "Morph",
              "parameter_type": 2,
              "parameter_enum": ["val1", "val2"],
              "parameter_mmax": 1,
              "parameter_invisible": 2
            }
          },
          "varname": "Morph",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "msg-morph",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [480.0, 885.0, 60.0, 22.0],
          "text": "morph"
        }
      },
      {
        "box": {
          "id": "tune",
          "maxclass": "live.menu",
          "numinlets": 1,
          "numoutlets": 3,
          "outlettype": ["", "", ""],
          "patching_rect": [380.0, 660.0, 60.0, 15.0],
          "presentation": 1,
          "presentation_rect": [590.0, 56.0, 46.0, 15.0],
          "annotation": "Tune each new sound's fundamental to this note (kicks, toms, 808s); off leaves it as made.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Tune",
              "parameter_shortname": "Tune",
              "parameter_type": 2,
              "parameter_enum": ["off", "C0", "C#0", "D0", "D#0", "E0", "F0", "F#0", "G0", "G#0", "A0", "A#0", "B0", "C1", "C#1", "D1", "D#1", "E1", "F1", "F#1", "G1", "G#1", "A1", "A#1", "B1", "C2", "C#2", "D2", "D#2", "E2", "F2", "F#2", "G2", "G#2", "A2", "A#2", "B2", "C3", "C#3", "D3", "D#3", "E3", "F3", "F#3", "G3", "G#3", "A3", "A#3", "B3"],
              "parameter_mmax": 48,
              "parameter_initial_enable": 1,
              "parameter_initial": [0]
            }
          },
          "varname": "Tune",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-tune",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [380.0, 685.0, 110.0, 22.0],
          "text": "prepend tuneindex"
        }
      },
      {
        "box": {
          "id": "l-tune",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [450.0, 658.0, 40.0, 18.0],
          "presentation": 1,
          "presentation_rect": [590.0, 38.0, 46.0, 18.0],
          "text": "tune"
        }
      },
      {
        "box": {
          "id": "vel",
          "maxclass": "live.dial",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [620.0, 640.0, 44.0, 48.0],
          "presentation": 1,
          "presentation_rect": [644.0, 2.0, 44.0, 48.0],
          "annotation": "How hard new sounds hit: 1 a full hit; softer is quieter and, with a model of several kinds, darker and shorter as real soft hits are.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Velocity",
              "parameter_shortname": "Vel",
              "parameter_type": 0,
              "parameter_mmin": 0.01,
              "parameter_mmax": 1.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [1.0],
              "parameter_unitstyle": 1
            }
          },
          "varname": "Velocity",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-vel",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [620.0, 695.0, 70.0, 22.0],
          "text": "prepend vel"
        }
      },
      {
        "box": {
          "id": "layers",
          "maxclass": "live.text",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", ""],
          "patching_rect": [700.0, 660.0, 64.0, 20.0],
          "presentation": 1,
          "presentation_rect": [692.0, 6.0, 64.0, 20.0],
          "mode": 0,
          "text": "layers",
          "texton": "layers",
          "annotation": "The chosen model's drum as a sampler instrument: 4 velocity layers, the count's round robins each (at most 8), in one folder of the sample folder.",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Layers",
              "parameter_shortname": "Layers",
              "parameter_type": 2,
              "parameter_enum": ["val1", "val2"],
              "parameter_mmax": 1,
              "parameter_invisible": 2
            }
          },
          "varname": "Layers",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "msg-layers",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [700.0, 685.0, 50.0, 22.0],
          "text": "layers"
        }
      },
      {
        "box": {
          "id": "blendmenu",
          "maxclass": "umenu",
          "numinlets": 1,
          "numoutlets": 3,
          "outlettype": ["int", "", ""],
          "patching_rect": [620.0, 740.0, 112.0, 22.0],
          "presentation": 1,
          "presentation_rect": [644.0, 56.0, 112.0, 20.0],
          "parameter_enable": 0,
          "items": [],
          "annotation": "A kind to blend into new sounds (a model of several kinds), by the blend dial."
        }
      },
      {
        "box": {
          "id": "p-blendindex",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [620.0, 770.0, 120.0, 22.0],
          "text": "prepend blendindex"
        }
      },
      {
        "box": {
          "id": "blend",
          "maxclass": "live.dial",
          "numinlets": 1,
          "numoutlets": 2,
          "outlettype": ["", "float"],
          "patching_rect": [760.0, 740.0, 44.0, 48.0],
          "presentation": 1,
          "presentation_rect": [644.0, 80.0, 44.0, 48.0],
          "annotation": "How much of the blend kind: 0 none, 1 all of it (the kinds' embeddings are interpolated).",
          "saved_attribute_attributes": {
            "valueof": {
              "parameter_longname": "Blend",
              "parameter_shortname": "Blend",
              "parameter_type": 0,
              "parameter_mmin": 0.0,
              "parameter_mmax": 1.0,
              "parameter_initial_enable": 1,
              "parameter_initial": [0.0],
              "parameter_unitstyle": 1
            }
          },
          "varname": "Blend",
          "parameter_enable": 1
        }
      },
      {
        "box": {
          "id": "p-blend",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "outlettype": [""],
          "patching_rect": [760.0, 795.0, 80.0, 22.0],
          "text": "prepend blend"
        }
      }
    ],
    "lines": [
      {
        "patchline": {
          "destination": ["msg-init", 0],
          "source": ["thisdevice", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["msg-init", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["udpreceive", 0]
        }
      },
      {
        "patchline": {
          "destination": ["udpsend", 0],
          "source": ["js", 0]
        }
      },
      {
        "patchline": {
          "destination": ["udpreceive", 0],
          "source": ["js", 6]
        }
      },
      {
        "patchline": {
          "destination": ["p-model", 0],
          "source": ["models", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-model", 0]
        }
      },
      {
        "patchline": {
          "destination": ["msg-generate", 0],
          "source": ["new", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["msg-generate", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-count", 0],
          "source": ["count", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-count", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-strength", 0],
          "source": ["strength", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-strength", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-tosimpler", 0],
          "source": ["tosimpler", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-tosimpler", 0]
        }
      },
      {
        "patchline": {
          "destination": ["path-drop", 0],
          "source": ["drop", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-drop", 0],
          "source": ["path-drop", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-drop", 0]
        }
      },
      {
        "patchline": {
          "destination": ["msg-vary", 0],
          "source": ["again", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["msg-vary", 0]
        }
      },
      {
        "patchline": {
          "destination": ["path-folder", 0],
          "source": ["folder", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-folder", 0],
          "source": ["path-folder", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-folder", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-now", 0],
          "source": ["now", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-now", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-history", 0],
          "source": ["history", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-history", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-daemonport", 0],
          "source": ["daemonport", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-daemonport", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-replyport", 0],
          "source": ["replyport", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-replyport", 0]
        }
      },
      {
        "patchline": {
          "destination": ["buffer", 0],
          "source": ["js", 1]
        }
      },
      {
        "patchline": {
          "destination": ["status", 0],
          "source": ["js", 2]
        }
      },
      {
        "patchline": {
          "destination": ["models", 0],
          "source": ["js", 3]
        }
      },
      {
        "patchline": {
          "destination": ["new", 0],
          "source": ["js", 4]
        }
      },
      {
        "patchline": {
          "destination": ["progress", 0],
          "source": ["js", 5]
        }
      },
      {
        "patchline": {
          "destination": ["history", 0],
          "source": ["js", 7]
        }
      },
      {
        "patchline": {
          "destination": ["target", 0],
          "source": ["js", 8]
        }
      },
      {
        "patchline": {
          "destination": ["stripnote", 0],
          "source": ["notein", 0]
        }
      },
      {
        "patchline": {
          "destination": ["stripnote", 1],
          "source": ["notein", 1]
        }
      },
      {
        "patchline": {
          "destination": ["trig", 0],
          "source": ["stripnote", 1]
        }
      },
      {
        "patchline": {
          "destination": ["velocity", 0],
          "source": ["trig", 1]
        }
      },
      {
        "patchline": {
          "destination": ["gain-l", 1],
          "source": ["velocity", 0]
        }
      },
      {
        "patchline": {
          "destination": ["gain-r", 1],
          "source": ["velocity", 0]
        }
      },
      {
        "patchline": {
          "destination": ["msg-restart", 0],
          "source": ["trig", 0]
        }
      },
      {
        "patchline": {
          "destination": ["groove", 0],
          "source": ["msg-restart", 0]
        }
      },
      {
        "patchline": {
          "destination": ["groove", 0],
          "source": ["rate", 0]
        }
      },
      {
        "patchline": {
          "destination": ["gain-l", 0],
          "source": ["groove", 0]
        }
      },
      {
        "patchline": {
          "destination": ["gain-r", 0],
          "source": ["groove", 1]
        }
      },
      {
        "patchline": {
          "destination": ["plugout", 0],
          "source": ["gain-l", 0]
        }
      },
      {
        "patchline": {
          "destination": ["plugout", 1],
          "source": ["gain-r", 0]
        }
      },
      {
        "patchline": {
          "destination": ["msg-more", 0],
          "source": ["more", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["msg-more", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-amount", 0],
          "source": ["amount", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-amount", 0]
        }
      },
      {
        "patchline": {
          "destination": ["msg-kit", 0],
          "source": ["kit", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["msg-kit", 0]
        }
      },
      {
        "patchline": {
          "destination": ["msg-newtail", 0],
          "source": ["newtail", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["msg-newtail", 0]
        }
      },
      {
        "patchline": {
          "destination": ["path-dropa", 0],
          "source": ["dropa", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-dropa", 0],
          "source": ["path-dropa", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-dropa", 0]
        }
      },
      {
        "patchline": {
          "destination": ["path-dropb", 0],
          "source": ["dropb", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-dropb", 0],
          "source": ["path-dropb", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-dropb", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-position", 0],
          "source": ["position", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-position", 0]
        }
      },
      {
        "patchline": {
          "destination": ["msg-morph", 0],
          "source": ["morph", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["msg-morph", 0]
        }
      },
      {
        "patchline": {
          "destination": ["p-tune", 0],
          "source": ["tune", 0]
        }
      },
      {
        "patchline": {
          "destination": ["js", 0],
          "source": ["p-tune", 0]
        }
      },
      {
        "patchline": {
          "source": ["vel", 0],
          "destination": ["p-vel", 0]
        }
      },
      {
        "patchline": {
          "source": ["p-vel", 0],
          "destination": ["js", 0]
        }
      },
      {
        "patchline": {
          "source": ["layers", 0],
          "destination": ["msg-layers", 0]
        }
      },
      {
        "patchline": {
          "source": ["msg-layers", 0],
          "destination": ["js", 0]
        }
      },
      {
        "patchline": {
          "source": ["blendmenu", 0],
          "destination": ["p-blendindex", 0]
        }
      },
      {
        "patchline": {
          "source": ["p-blendindex", 0],
          "destination": ["js", 0]
        }
      },
      {
        "patchline": {
          "source": ["js", 9],
          "destination": ["blendmenu", 0]
        }
      },
      {
        "patchline": {
          "source": ["blend", 0],
          "destination": ["p-blend", 0]
        }
      },
      {
        "patchline": {
          "source": ["p-blend", 0],
          "destination": ["js", 0]
        }
      }
    ],
    "dependency_cache": [
      {
        "name": "tad_drums.js",
        "patcherrelativepath": ".",
        "type": "TEXT",
        "implicit": 1
      }
    ],
    "autosave": 0,
    "project": {
      "version": 1,
      "creationdate": 3590052493,
      "modificationdate": 3590052493,
      "viewrect": [0.0, 0.0, 300.0, 500.0],
      "autoorganize": 1,
      "hideprojectwindow": 1,
      "showdependencies": 1,
      "autolocalize": 0,
      "contents": {"patchers": {}},
      "layout": {},
      "searchpath": {},
      "detailsvisible": 0,
      "amxdtype": 1768515945,
      "readonly": 0,
      "devpathtype": 0,
      "devpath": ".",
      "sortmode": 0,
      "viewmode": 0,
      "includepackages": 0
    }
  }
}
