// shmq: create, delete, list, send to, receive from and dump queues, and
// manage their consumer groups.
#include <charconv>
#include <chrono>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "parse.hpp"
#include "shmq/version.hpp"

using namespace shmq::tools;

namespace {

const char* const kFromHelp =
    "Where a new group starts: oldest (retained: a durable queue's journal reaches back further than its "
    "ring), newest, a log position (an integer), or a time: "
    "RFC 3339 (2026-11-29T14:00:00Z, 2026-11-29T15:00:00.5+01:00) or @UNIX "
    "(@1764424800 seconds, @1764424800123456789ns). Ignored, with a warning, when the group exists";

const char* const kToHelp =
    "Where the group starts again: oldest (retained), newest, a log position (an integer), or a time (RFC 3339 "
    "or @UNIX, as recv --from)";

std::uint32_t parse_message_size(std::string_view text) {
  const std::uint64_t bytes = parse_size(text);
  if (bytes > UINT32_MAX) throw ParseError("size '" + std::string(text) + "' is too large");
  return static_cast<std::uint32_t>(bytes);
}

// A duration that must be above 0 (leaving the option out says "none").
std::chrono::nanoseconds parse_positive_duration(std::string_view text) {
  const std::chrono::nanoseconds duration = parse_duration(text);
  if (duration.count() == 0) throw ParseError("'0': a duration above 0 is needed (leave the option out for none)");
  return duration;
}

// --max-deliveries: 1..kMaxDeliveriesLimit (0, "unlimited" in the library, is
// what leaving the option out says).
CLI::Validator max_deliveries_range() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::uint32_t value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value == 0 ||
            value > shmq::kMaxDeliveriesLimit) {
          return "'" + text + "' is not a number from 1 to " + std::to_string(shmq::kMaxDeliveriesLimit) +
                 " (leave --max-deliveries out for no limit)";
        }
        return {};
      },
      "", "1.." + std::to_string(shmq::kMaxDeliveriesLimit));
}

void add_queue_argument(CLI::App& command, std::string& queue) {
  command.add_option("QUEUE", queue, "Queue name ([A-Za-z0-9._-], 1..63 characters)")->required();
}

CLI::App* add_create(CLI::App& app, CreateArgs& args) {
  auto* create = app.add_subcommand(
      "create",
      "Create a queue; prints what it takes of the shm directory ($SHMQ_SHM_DIR, default /dev/shm): the ring, "
      "plus capacity/4 bytes of delivery state for each of the --max-groups group entries (16 by default), used "
      "or not");
  add_queue_argument(*create, args.queue);
  auto& o = args.options;
  add_parsed_option(*create, "--capacity", o.capacity, parse_size,
                    "Ring size: a power of two from 4K to 1T (default 1M)")
      ->type_name("SIZE");
  add_parsed_option(*create, "--max-message", args.max_message, parse_message_size,
                    "Largest payload, below capacity/4 (default 64K, or capacity/8 when smaller)")
      ->type_name("SIZE");
  create->add_flag("--durable", o.durable, "Journal every message to disk (through shmqd)");
  add_parsed_option(*create, "--mode", o.mode, parse_segment_mode,
                    "Segment file mode in octal (default 600; 660 shares the queue with your group). No "
                    "execute bits; a world-writable mode gets a warning")
      ->type_name("OCTAL");
  create->add_option("--group", args.group,
                     "The segment file's group, a name or a gid (default: yours); with --mode 660 its members "
                     "may send and receive. You must belong to it (or be root)")
      ->type_name("GROUP");
  create->add_option("--max-producers", o.max_producers, "Producer table entries (default 64)")
      ->type_name("N")
      ->check(CLI::Range(1, 255));
  create->add_option("--max-groups", o.max_groups,
                     "Consumer group entries (default 16); each takes capacity/4 bytes of /dev/shm, used or not")
      ->type_name("N")
      ->check(CLI::Range(1, 64));
  create->add_option("--max-consumers", o.max_consumers, "Consumers per group (default 16)")
      ->type_name("N")
      ->check(CLI::Range(1, 64));
  create->add_option("--max-deliveries", o.policy.max_deliveries,
                     "Delivery policy: a message delivered N times to a group and not acked is not delivered "
                     "again; it goes to the dead-letter queue, reason max-deliveries (1..254; default: no limit)")
      ->type_name("N")
      ->check(max_deliveries_range());
  create->add_option("--dead-letter", o.policy.dead_letter,
                     "Delivery policy: where dead letters go (past --max-deliveries or --ttl, or rejected): an "
                     "existing queue of this namespace, not this one, whose own dead letters do not lead back here, "
                     "and whose max message is at least 245 bytes above this queue's (the origin rides along). "
                     "Default: dead letters are dropped, counted")
      ->type_name("QUEUE");
  add_parsed_option(*create, "--ack-timeout", o.policy.ack_timeout, parse_positive_duration,
                    "Delivery policy: a message held longer than DUR by a live member goes back to its group, "
                    "flagged; the late ack is refused (lease expired). Competing groups only (default: none)")
      ->type_name("DUR");
  add_parsed_option(*create, "--ttl", o.policy.ttl, parse_positive_duration,
                    "Delivery policy: a message older than DUR when a group would deliver it goes to the "
                    "dead-letter queue instead, reason expired (default: none)")
      ->type_name("DUR");
  create->footer("The delivery policy (--max-deliveries, --dead-letter, --ack-timeout, --ttl) is set here, for "
                 "the queue's life: docs/cli.md, \"Poison messages and stuck consumers\".");
  return create;
}

CLI::App* add_send(CLI::App& app, SendArgs& args) {
  auto* send = app.add_subcommand(
      "send",
      "Send one message per input line; prints 'sent N, duplicates M' on stderr at the end");
  add_queue_argument(*send, args.queue);
  send->add_option("-p,--producer", args.producer,
                   "Producer name; a rerun under the same name resumes its sequence")
      ->capture_default_str();
  send->add_option("-f,--file", args.file, "Read lines from FILE instead of stdin")
      ->check(CLI::ExistingFile);
  send->add_flag("--durable", args.durable,
                 "Durable send: exit 0 only once shmqd's journal has synced every line to disk (the queue must "
                 "be durable; --timeout bounds the wait)");
  send->add_flag(
      "--seq-prefix", args.seq_prefix,
      "Each line is SEQ<TAB>PAYLOAD; SEQ is the explicit sequence, so a rerun of the same "
      "input sends only what is missing (duplicates are counted, not sent)");
  add_parsed_option(*send, "--timeout", args.timeout, parse_duration,
                    "Fail when the ring has no room for this long, naming the group that holds it (default: wait)")
      ->type_name("DUR");
  send->footer(
      "Ctrl-C (SIGINT) or SIGTERM stops it cleanly: it prints the summary, detaches its producer, then ends by "
      "that signal (exit status 130 or 143 in a shell).");
  return send;
}

CLI::App* add_recv(CLI::App& app, RecvArgs& args, std::string& format) {
  auto* recv = app.add_subcommand(
      "recv", "Print each message, then ack it (a crash between the two redelivers it)");
  add_queue_argument(*recv, args.queue);
  recv->add_option("-g,--group", args.group, "Consumer group")->capture_default_str();
  recv->add_option("-c,--count", args.count, "Exit after N messages")
      ->type_name("N")
      ->check(whole_number("; leave --count out for no limit"));
  add_parsed_option(*recv, "-t,--timeout", args.timeout, parse_duration,
                    "Exit 0 once DUR passes with no message (500ms, 3s, 2m)")
      ->type_name("DUR");
  add_parsed_option(*recv, "--from", args.from, parse_start, kFromHelp)
      ->type_name("oldest|newest|POS|TIME");
  recv->add_flag("--exclusive", args.exclusive,
                 "An exclusive group: one member reads at a time, in order; the others stand by (waiting, as "
                 "for a message) and take over when it exits or dies. The group's first member sets its mode; "
                 "joining with the other mode is an error");
  recv->add_option("--data-dir", args.data_dir,
                   "Durable queues: shmqd's data directory, whose journal a group reads when it falls a ring "
                   "behind or replays (default: the running shmqd's, else $SHMQ_DATA_DIR, else as shmqd's)");
  auto* format_option =
      recv->add_option("--format", format,
                       "text: the payload and a newline; json: one object a line (with deliveries, and a dead "
                       "letter's origin and reason). A dead letter's payload is its original one")
          ->check(CLI::IsMember({"text", "json"}))
          ->capture_default_str();
  recv->add_option("--exec", args.exec,
                   "Run `sh -c CMD` for each message, one at a time, in order, instead of printing it: the payload "
                   "on its standard input; SHMQ_QUEUE, SHMQ_GROUP, SHMQ_PRODUCER, SHMQ_SEQ, SHMQ_POSITION, "
                   "SHMQ_DELIVERIES (1 the first time), SHMQ_REDELIVERED (0/1) in its environment (a dead letter "
                   "adds SHMQ_REASON and SHMQ_ORIGIN_*). Exit 0 acks the message, exit 99 rejects it (to the "
                   "dead-letter queue, or dropped), any other exit or a signal nacks it (it comes again). If recv "
                   "dies while CMD runs, the message comes back as after any consumer crash")
      ->type_name("CMD")
      ->excludes(format_option);
  recv->footer("With --exec, a shell script is a worker: docs/cli.md, \"How a shell script becomes a worker\". "
               "SIGINT or SIGTERM waits for a running CMD, settles its message, then leaves.");
  return recv;
}

CLI::App* add_dump(CLI::App& app, DumpArgs& args, std::string& format) {
  auto* dump = app.add_subcommand(
      "dump", "Show the ring (or the journal) record by record; --follow: as they are committed, joining no group");
  add_queue_argument(*dump, args.queue);
  auto* journal =
      dump->add_flag("--journal", args.journal, "Dump a durable queue's journal (its data records) instead of the ring");
  dump->add_option("--data-dir", args.data_dir,
                   "With --journal: shmqd's data directory (default: the running shmqd's, else $SHMQ_DATA_DIR, else as shmqd's)");
  dump->add_option("--from", args.from, "First log position (default: the oldest retained; --follow: the newest)")
      ->type_name("POS")
      ->check(whole_number());
  dump->add_option("--limit", args.limit, "Show at most N records")
      ->type_name("N")
      ->check(whole_number("; leave --limit out for no limit"));
  auto* follow = dump->add_flag(
      "-F,--follow", args.follow,
      "Print records as they are committed, from --from or the newest, until Ctrl-C, --limit or --timeout. "
      "Joins no group, so holds nothing of the ring");
  auto* timeout = add_parsed_option(*dump, "-t,--timeout", args.timeout, parse_duration,
                                    "With --follow: exit 0 once DUR passes with no new record")
                      ->type_name("DUR");
  timeout->needs(follow);
  follow->excludes(journal);
  dump->add_option("--format", format, "text or json (one object a line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return dump;
}

void add_group_argument(CLI::App& command, std::string& group) {
  command.add_option("GROUP", group, "Consumer group name")->required();
}

struct GroupCommands {
  CLI::App* list;
  CLI::App* remove;
  CLI::App* seek;
};

GroupCommands add_group(CLI::App& app, GroupArgs& args, std::string& format) {
  auto* group = app.add_subcommand(
      "group",
      "A queue's consumer groups: list them, delete one (a group nobody reads any more holds the ring, and "
      "producers stall once it is full), or move one to another start");
  group->require_subcommand(1);
  auto* list = group->add_subcommand("list", "List the queue's groups, marking the slowest (it holds the ring)");
  add_queue_argument(*list, args.queue);
  list->add_option("--format", format, "text (a table) or json (an array)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  auto* remove = group->add_subcommand(
      "delete", "Delete a group, releasing what it holds; refused while a live consumer is in it");
  add_queue_argument(*remove, args.queue);
  add_group_argument(*remove, args.group);
  auto* seek = group->add_subcommand(
      "seek", "Move a group to another start (what it has not acked before that is no longer delivered to it); "
              "refused while a live consumer is in it");
  add_queue_argument(*seek, args.queue);
  add_group_argument(*seek, args.group);
  add_parsed_option(*seek, "--to", args.to, parse_start, kToHelp)
      ->type_name("oldest|newest|POS|TIME")
      ->required();
  seek->add_option("--data-dir", args.data_dir,
                   "Durable queues: shmqd's data directory, whose journal a group starting before the ring reads "
                   "(default: the running shmqd's, else $SHMQ_DATA_DIR, else as shmqd's)");
  for (CLI::App* command : {list, remove, seek}) {
    command->footer("Namespace: -n,--namespace NS (default: $SHMQ_NAMESPACE, else 'default')");
  }
  return {list, remove, seek};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmq: the command line of the shmq shared-memory message queue", "shmq"};
  add_version_flag(app, SHMQ_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough();
  app.footer("Environment: SHMQ_NAMESPACE (the namespace), SHMQ_SHM_DIR (the directory of every segment, default "
             "/dev/shm; shmqd must see the same), SHMQ_DATA_DIR (shmqd's data directory)");
  std::string ns;
  add_namespace_option(app, ns);

  CreateArgs create_args;
  auto* create = add_create(app, create_args);

  DeleteArgs delete_args;
  auto* remove = app.add_subcommand(
      "delete", "Delete a queue: its segment and, for a durable queue, its journal with every message in it");
  add_queue_argument(*remove, delete_args.queue);
  remove->add_option("--data-dir", delete_args.data_dir,
                     "shmqd's data directory, where a durable queue's journal is (default: the running shmqd's, "
                     "else $SHMQ_DATA_DIR, else as shmqd's)");
  remove->add_flag("--force", delete_args.force,
                   "delete a durable queue even though its journal holds messages no group has acknowledged");

  std::string list_format = "text";
  auto* list = app.add_subcommand("list", "List the queues of the namespace");
  list->add_option("--format", list_format, "text (one name a line) or json (an array)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  SendArgs send_args;
  auto* send = add_send(app, send_args);
  RecvArgs recv_args;
  std::string recv_format = "text";
  auto* recv = add_recv(app, recv_args, recv_format);
  DumpArgs dump_args;
  std::string dump_format = "text";
  auto* dump = add_dump(app, dump_args, dump_format);

  GroupArgs group_args;
  std::string group_format = "text";
  const GroupCommands group = add_group(app, group_args, group_format);

  for (CLI::App* command : app.get_subcommands({})) {
    const std::string footer = "Namespace: -n,--namespace NS (default: $SHMQ_NAMESPACE, else 'default')";
    command->footer(command->get_footer().empty() ? footer : command->get_footer() + "\n" + footer);
  }
  return run_main(app, argc, argv, [&] {
    if (create->parsed()) return run_create(create_args, ns);
    if (remove->parsed()) return run_delete(delete_args, ns);
    if (list->parsed()) return run_list(list_format == "json", ns);
    if (send->parsed()) return run_send(send_args, ns);
    if (recv->parsed()) {
      recv_args.json = recv_format == "json";
      return run_recv(recv_args, ns);
    }
    if (dump->parsed()) {
      dump_args.json = dump_format == "json";
      return run_dump(dump_args, ns);
    }
    if (group.list->parsed()) {
      group_args.json = group_format == "json";
      return run_group_list(group_args, ns);
    }
    if (group.remove->parsed()) return run_group_delete(group_args, ns);
    if (group.seek->parsed()) return run_group_seek(group_args, ns);
    return kExitUsage;  // unreachable: require_subcommand(1)
  });
}
