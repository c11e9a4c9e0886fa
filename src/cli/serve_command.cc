// serve: the Hugging Face hub-compatible mirror over a local cache.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "mc/mirror/mirror_server.h"

namespace mc::cli {
namespace {

struct ServeArgs {
  std::string cache_dir, listen = "127.0.0.1:8765", access_config, public_url;
  std::string max_rate, max_rate_per_answer;  // "" = no cap
  TlsArgs tls;
};

Status RunServe(const ServeArgs& args) {
  MC_ASSIGN_OR_RETURN(std::filesystem::path root, CacheDirOrDefault(args.cache_dir));
  const sigset_t stop_signals = BlockStopSignals();  // before any server thread starts

  mirror::MirrorOptions options;
  options.cache_dir = root;
  options.listen = args.listen;
  if (!args.access_config.empty()) options.access_config = args.access_config;
  if (!args.public_url.empty()) options.public_base_url = args.public_url;
  options.tls_cert_file = args.tls.cert;
  options.tls_key_file = args.tls.key;
  if (!args.max_rate.empty()) {
    MC_ASSIGN_OR_RETURN(options.max_bytes_per_second, ParseRate(args.max_rate), "--max-rate");
  }
  if (!args.max_rate_per_answer.empty()) {
    MC_ASSIGN_OR_RETURN(options.max_bytes_per_second_per_answer,
                        ParseRate(args.max_rate_per_answer), "--max-rate-per-answer");
  }
  MC_ASSIGN_OR_RETURN(auto server, mirror::MirrorServer::Create(options));
  MC_RETURN_IF_ERROR(server->Start(), "start mirror on " + args.listen);
  std::cout << "listening on " << server->base_url() << std::endl;
  std::cerr << "Serving " << root.string() << " over the Hugging Face hub API.\n"
            << "Try: HF_ENDPOINT=" << server->base_url() << " hf download <repo>, or curl "
            << server->base_url() << "/api/models/<repo>/revision/main\n"
            << "Stop with Ctrl-C." << std::endl;
  WaitForStopSignal(stop_signals);
  server->Stop();
  return Status::Ok();
}

}  // namespace

void AddServeCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve a cache over the Hugging Face hub HTTP API, read-only: clients set\n"
      "HF_ENDPOINT=http://HOST:PORT and download from it as from huggingface.co. Hosts use it to\n"
      "fetch models from each other. Prints 'listening on <url>' when ready; stops on SIGTERM.\n"
      "Example: modelcache serve --cache-dir /data/hf-cache --listen 0.0.0.0:8765");
  auto args = std::make_shared<ServeArgs>();
  AddCacheDirOption(*cmd, args->cache_dir);
  cmd->add_option(
      "--listen", args->listen,
      "Address and port to listen on (default 127.0.0.1:8765; port 0 picks a free one)");
  cmd->add_option("--access-config", args->access_config,
                  "JSON file naming gated, private or disabled repos and the tokens they accept\n"
                  "(see docs/http-api.md)")
      ->check(CLI::ExistingFile);
  AddTlsOptions(*cmd, args->tls, /*client_side=*/false);
  cmd->add_option("--public-url", args->public_url,
                  "Base URL clients reach this server at, used in pagination links\n"
                  "(default: taken from each request's Host header)");
  cmd->add_option("--max-rate", args->max_rate,
                  "Cap the file bytes this server sends at RATE a second, all clients together\n"
                  "(500MB, 100MiB; '/s' may follow): keeps a host that serves its peers from\n"
                  "filling its own link. Default: no cap")
      ->type_name("RATE");
  cmd->add_option("--max-rate-per-answer", args->max_rate_per_answer,
                  "Cap each download answer on its own at RATE a second, as a CDN caps each\n"
                  "connection or a long link caps one TCP stream: for benchmarks and tests of\n"
                  "clients that open several connections. Default: no cap")
      ->type_name("RATE");
  cmd->callback([args, &result] { result.status = RunServe(*args); });
}

}  // namespace mc::cli
