#include "mc/mirror/mirror_server.h"

#include <spdlog/spdlog.h>

#include <system_error>

#include "mirror/mirror_core.h"

namespace mc::mirror {
namespace {

class MirrorServerImpl final : public MirrorServer {
 public:
  explicit MirrorServerImpl(std::unique_ptr<MirrorCore> core) : core_(std::move(core)) {}
  ~MirrorServerImpl() override { Stop(); }

  Status Init(const std::string& listen, const std::filesystem::path& tls_cert,
              const std::filesystem::path& tls_key) {
    net::HttpServerOptions http;
    http.listen = listen;
    http.tls_cert_file = tls_cert;
    http.tls_key_file = tls_key;
    http.name = "mirror";
    MirrorCore* core = core_.get();
    http.handler = [core](const net::HttpRequest& req, net::HttpResponse& res) {
      core->Handle(req, res);
    };
    MC_ASSIGN_OR_RETURN(http_, net::HttpServer::Create(std::move(http)));
    return Status::Ok();
  }

  Status Start() override {
    core_->ResumeWaits();
    MC_RETURN_IF_ERROR(http_->Start(), "mirror");
    core_->set_fallback_base_url(http_->base_url());
    spdlog::info("mirror: serving on {}", http_->base_url());
    return Status::Ok();
  }
  uint16_t port() const override { return http_->port(); }
  std::string base_url() const override { return http_->base_url(); }
  void Stop() override {
    core_->StopWaits();  // wakes stalled and throttled bodies, or the join below would wait
    if (http_) http_->Stop();
  }
  MirrorStats stats() const override { return core_->stats(); }

 private:
  std::unique_ptr<MirrorCore> core_;  // outlives http_ (declared first, destroyed last)
  std::unique_ptr<net::HttpServer> http_;
};

Status CheckOptions(const MirrorOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(options.cache_dir, ec)) {
    return NotFoundError("mirror: cache dir " + options.cache_dir.string() + " does not exist");
  }
  if (options.tree_page_size == 0 || options.max_tree_page_size < options.tree_page_size) {
    return InvalidArgumentError("mirror: need 0 < tree_page_size <= max_tree_page_size");
  }
  if (options.public_base_url && !options.public_base_url->starts_with("http://") &&
      !options.public_base_url->starts_with("https://")) {
    return InvalidArgumentError("mirror: public_base_url must start with http:// or https://");
  }
  return ValidateFaultOptions(options.faults);
}

StatusOr<std::unique_ptr<MirrorCore>> MakeCore(MirrorOptions options) {
  MC_RETURN_IF_ERROR(CheckOptions(options));
  AccessConfig access;
  if (options.access_config) {
    MC_ASSIGN_OR_RETURN(access, AccessConfig::Load(*options.access_config), "mirror");
  }
  cache::CacheOptions cache_options;
  cache_options.root = options.cache_dir;
  cache_options.create_if_missing = false;
  MC_ASSIGN_OR_RETURN(std::unique_ptr<cache::CacheStore> store,
                      cache::CacheStore::Open(std::move(cache_options)), "mirror");
  return std::make_unique<MirrorCore>(std::move(store), std::move(access), std::move(options));
}

class MirrorHandlerImpl final : public MirrorHandler {
 public:
  explicit MirrorHandlerImpl(std::unique_ptr<MirrorCore> core) : core_(std::move(core)) {
    core_->ResumeWaits();
  }
  void Handle(const net::HttpRequest& request, net::HttpResponse& response) override {
    core_->Handle(request, response);
  }
  MirrorStats stats() const override { return core_->stats(); }
  void StopFaults() override { core_->StopWaits(); }

 private:
  std::unique_ptr<MirrorCore> core_;
};

}  // namespace

StatusOr<std::unique_ptr<MirrorServer>> MirrorServer::Create(MirrorOptions options) {
  std::string listen = options.listen;
  const std::filesystem::path tls_cert = options.tls_cert_file, tls_key = options.tls_key_file;
  MC_ASSIGN_OR_RETURN(std::unique_ptr<MirrorCore> core, MakeCore(std::move(options)));
  auto server = std::make_unique<MirrorServerImpl>(std::move(core));
  MC_RETURN_IF_ERROR(server->Init(listen, tls_cert, tls_key));
  return std::unique_ptr<MirrorServer>(std::move(server));
}

StatusOr<std::unique_ptr<MirrorHandler>> MirrorHandler::Create(MirrorOptions options) {
  MC_ASSIGN_OR_RETURN(std::unique_ptr<MirrorCore> core, MakeCore(std::move(options)));
  return std::unique_ptr<MirrorHandler>(std::make_unique<MirrorHandlerImpl>(std::move(core)));
}

}  // namespace mc::mirror
