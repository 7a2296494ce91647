// Pub/Sub's commands (pubsub.hpp has the tables): the (un)subscribe family runs on the
// connection's thread against its home shard's table; PUBLISH, SPUBLISH and PUBSUB's
// queries run a part on every shard and reply from what they gathered.
#include <algorithm>
#include <set>

#include "command.hpp"

namespace runnel::cmd {
namespace {

constexpr std::string_view kSubscribeVerb[3] = {"subscribe", "psubscribe", "ssubscribe"};
constexpr std::string_view kUnsubscribeVerb[3] = {"unsubscribe", "punsubscribe", "sunsubscribe"};

// CLIENT LIST's sub, psub and ssub.
void count_for_client_list(Session& s) {
  std::size_t counts[3] = {0, 0, 0};
  for (int k = 0; k < 3 && s.subscriptions; ++k) counts[k] = s.subscriptions->names[k].size();
  s.info->set_subscriptions(counts[0], counts[1], counts[2]);
}

void subscribe_to(CommandContext& ctx, ChannelKind kind) {
  Session& s = ctx.session;
  const auto k = static_cast<int>(kind);
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (!s.subscriptions) s.subscriptions = std::make_unique<Session::Subscriptions>();
    if (s.subscriptions->names[k].emplace(ctx.args[i]).second) {
      s.subscriber->subscriptions_table().subscribe(kind, ctx.args[i], s.subscriber);
    }
    ctx.reply.push(3);
    ctx.reply.bulk(kSubscribeVerb[k]);
    ctx.reply.bulk(ctx.args[i]);
    ctx.reply.integer(static_cast<std::int64_t>(s.subscription_count(kind)));
  }
  count_for_client_list(s);
}

void unsubscribe_reply(CommandContext& ctx, ChannelKind kind, const std::string* name) {
  ctx.reply.push(3);
  ctx.reply.bulk(kUnsubscribeVerb[static_cast<int>(kind)]);
  if (name != nullptr) {
    ctx.reply.bulk(*name);
  } else {
    ctx.reply.null();
  }
  ctx.reply.integer(static_cast<std::int64_t>(ctx.session.subscription_count(kind)));
}

// Drops one subscription; false if the connection did not have it.
bool drop(Session& s, ChannelKind kind, std::string_view name) {
  if (!s.subscriptions) return false;
  auto& names = s.subscriptions->names[static_cast<int>(kind)];
  auto it = names.find(name);
  if (it == names.end()) return false;
  s.subscriber->subscriptions_table().unsubscribe(kind, name, s.subscriber);
  names.erase(it);
  return true;
}

void release_if_empty(Session& s) {
  if (s.subscriptions && s.subscriptions->names[0].empty() && s.subscriptions->names[1].empty() &&
      s.subscriptions->names[2].empty()) {
    s.subscriptions.reset();
  }
  count_for_client_list(s);
}

void unsubscribe_from(CommandContext& ctx, ChannelKind kind) {
  Session& s = ctx.session;
  if (ctx.args.size() == 1) {
    // All of this kind, or one reply with a null name when there are none.
    std::vector<std::string> all;
    if (s.subscriptions) {
      const auto& names = s.subscriptions->names[static_cast<int>(kind)];
      all.assign(names.begin(), names.end());
    }
    if (all.empty()) unsubscribe_reply(ctx, kind, nullptr);
    for (const std::string& name : all) {
      drop(s, kind, name);
      unsubscribe_reply(ctx, kind, &name);
    }
  } else {
    for (std::size_t i = 1; i < ctx.args.size(); ++i) {
      const std::string name(ctx.args[i]);
      drop(s, kind, name);
      unsubscribe_reply(ctx, kind, &name);
    }
  }
  release_if_empty(s);
}

}  // namespace

void unsubscribe_all(Session& s) {
  if (!s.subscriptions) return;
  for (int k = 0; k < 3; ++k) {
    for (const std::string& name : s.subscriptions->names[k]) {
      s.subscriber->subscriptions_table().unsubscribe(static_cast<ChannelKind>(k), name, s.subscriber);
    }
  }
  s.subscriptions.reset();
  count_for_client_list(s);
}

void subscribe(CommandContext& ctx) { subscribe_to(ctx, ChannelKind::kChannel); }
void psubscribe(CommandContext& ctx) { subscribe_to(ctx, ChannelKind::kPattern); }
void ssubscribe(CommandContext& ctx) { subscribe_to(ctx, ChannelKind::kShard); }
void unsubscribe(CommandContext& ctx) { unsubscribe_from(ctx, ChannelKind::kChannel); }
void punsubscribe(CommandContext& ctx) { unsubscribe_from(ctx, ChannelKind::kPattern); }
void sunsubscribe(CommandContext& ctx) { unsubscribe_from(ctx, ChannelKind::kShard); }

void publish_part(ShardPartContext& ctx) { ctx.gather.count += ctx.shard.pubsub.publish(false, ctx.args[1], ctx.args[2]); }
void spublish_part(ShardPartContext& ctx) { ctx.gather.count += ctx.shard.pubsub.publish(true, ctx.args[1], ctx.args[2]); }

void pubsub_channels_part(ShardPartContext& ctx) {
  const std::string_view pattern = ctx.args.size() > 2 ? ctx.args[2] : std::string_view();
  ctx.shard.pubsub.names(ChannelKind::kChannel, pattern, ctx.gather.keys);
}

void pubsub_shardchannels_part(ShardPartContext& ctx) {
  const std::string_view pattern = ctx.args.size() > 2 ? ctx.args[2] : std::string_view();
  ctx.shard.pubsub.names(ChannelKind::kShard, pattern, ctx.gather.keys);
}

void pubsub_numpat_part(ShardPartContext& ctx) { ctx.shard.pubsub.names(ChannelKind::kPattern, {}, ctx.gather.keys); }

void pubsub_numsub_part(ShardPartContext& ctx) {
  ctx.gather.counts.resize(ctx.args.size() - 2, 0);
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    ctx.gather.counts[i - 2] += ctx.shard.pubsub.subscribers(ChannelKind::kChannel, ctx.args[i]);
  }
}

void pubsub_shardnumsub_part(ShardPartContext& ctx) {
  ctx.gather.counts.resize(ctx.args.size() - 2, 0);
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    ctx.gather.counts[i - 2] += ctx.shard.pubsub.subscribers(ChannelKind::kShard, ctx.args[i]);
  }
}

// The names the shards gathered, each once (one channel may have subscribers on several).
void pubsub_names(CommandContext& ctx) {
  if (ctx.args.size() > 3) return reply_subcommand_syntax_error(ctx);
  const std::set<std::string> names(ctx.gather->keys.begin(), ctx.gather->keys.end());
  ctx.reply.array(names.size());
  for (const std::string& name : names) ctx.reply.bulk(name);
}

void pubsub_numpat(CommandContext& ctx) {
  const std::set<std::string> names(ctx.gather->keys.begin(), ctx.gather->keys.end());
  ctx.reply.integer(static_cast<std::int64_t>(names.size()));
}

void pubsub_numsub(CommandContext& ctx) {
  ctx.reply.array(2 * (ctx.args.size() - 2));  // a flat array in RESP3 too, as Redis 7.0
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    ctx.reply.bulk(ctx.args[i]);
    ctx.reply.integer(i - 2 < ctx.gather->counts.size() ? ctx.gather->counts[i - 2] : 0);
  }
}

void pubsub_help(CommandContext& ctx) {
  reply_help(ctx, {"CHANNELS [<pattern>]",
                   "    Return the currently active channels matching a <pattern> (default: '*').",
                   "NUMPAT",
                   "    Return number of subscriptions to patterns.",
                   "NUMSUB [<channel> ...]",
                   "    Return the number of subscribers for the specified channels, excluding",
                   "    pattern subscriptions(default: no channels).",
                   "SHARDCHANNELS [<pattern>]",
                   "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                   "SHARDNUMSUB [<shardchannel> ...]",
                   "    Return the number of subscribers for the specified shard level channel(s)"});
}

}  // namespace runnel::cmd
