# The network and daemon slice: sequence numbers after a restored or wiped node store, decisions recorded
# before they are published, a subscription flood at a PUB socket, a node lying about its newest sequence.
if(TARGET quorate_quorum_daemon AND TARGET quorate_node)
  find_package(cppzmq REQUIRED)
  pkg_check_modules(HOSTILE_NETWORK_SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
  quorate_test(network_hostile_test
    SOURCES network_record_test.cc network_sequence_test.cc network_history_flood_test.cc
            network_subscription_flood_test.cc
    LIBS quorate_quorum_daemon quorate_node quorate_wire cppzmq PkgConfig::HOSTILE_NETWORK_SQLITE3
         nlohmann_json::nlohmann_json
    TIMEOUT 300)
endif()
